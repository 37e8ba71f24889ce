"""The assembler's compiled grammar, kept between runs in the user's cache.

Importing lark and building (or unpickling) a parser costs more than the
rest of a short command's start-up, so the first run writes lark's
*standalone* parser for ``grammar.lark`` (``lark.tools.standalone``: the
LALR tables and the few lark classes a parse needs, in one module) compiled
to Python bytecode, and later runs execute that instead of importing lark.
The file lives in ``$XDG_CACHE_HOME/bpfvm`` (default ``~/.cache/bpfvm``)
under a name made of the hash of the grammar text, the parser options, the
installed lark's version and the Python bytecode's magic number: a changed
grammar, an upgraded lark or another Python gets a new file, never a stale
one.  It is written atomically (a temporary file renamed into place), so two
processes starting at once never read half a file.  A cache that cannot be
read or written (read-only home, full disk, a corrupt file) only costs the
build: the parser then comes from lark itself, with the same results.

:func:`load_parser` returns the parser and the module its exception and
token classes come from (the standalone module or lark).
"""

from __future__ import annotations

import importlib.util
import marshal
import re
import sys
import types
from pathlib import Path
from typing import Any

from bpfvm.usercache import cache_dir, digest, write_atomic

GRAMMAR = Path(__file__).with_name("grammar.lark")
_VERSION = re.compile(rb"""__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""")


def lark_version() -> str:
    """The installed lark's version, read from its source (importing lark
    is what the cache avoids); ``?`` when it cannot be found."""
    try:
        spec = importlib.util.find_spec("lark")
        origin = spec.origin if spec is not None else None
        if origin is None:
            return "?"
        with open(origin, "rb") as f:
            m = _VERSION.search(f.read(8192))
    except (OSError, ImportError, ValueError):
        return "?"
    return m.group(1).decode() if m else "?"


def cache_path(grammar: str, options: dict[str, Any]) -> Path:
    """The cache file for ``grammar`` built with ``options`` by the installed
    lark, for this Python's bytecode."""
    name = digest(grammar, repr(sorted(options.items())), lark_version(),
                  importlib.util.MAGIC_NUMBER.hex())
    return cache_dir() / f"asm-grammar-{name}.pyc"


def load_parser(transformer: Any, **options: Any) -> tuple[Any, types.ModuleType]:
    """An LALR parser for ``grammar.lark`` with ``options`` (starts,
    placeholders) and the inline ``transformer``, and the module of its
    classes (``UnexpectedInput``, ``Token``...): the standalone parser,
    from the cache or built now (and stored when possible); lark's own
    parser only if that fails."""
    grammar = GRAMMAR.read_text(encoding="utf-8")
    path = cache_path(grammar, options)
    for build in (_load_code, _build_code):
        code = build(path, grammar, options)
        if code is None:
            continue
        name = f"bpfvm_asm_grammar_{path.stem[12:]}"
        module = types.ModuleType(name)
        sys.modules[name] = module  # its dataclasses look their module up
        try:
            exec(code, module.__dict__)  # noqa: S102 - bytecode compiled by _build_code
            return module.Lark_StandAlone(transformer=transformer), module
        except Exception:  # noqa: BLE001 - a damaged entry: try the next way
            del sys.modules[name]
            continue
    import lark

    return lark.Lark(grammar, parser="lalr", transformer=transformer, **options), lark


def _load_code(path: Path, grammar: str, options: dict[str, Any]) -> types.CodeType | None:
    try:
        code = marshal.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 - missing, truncated or not ours: rebuild it
        return None
    return code if isinstance(code, types.CodeType) else None


def _build_code(path: Path, grammar: str, options: dict[str, Any]) -> types.CodeType | None:
    """lark's standalone parser for ``grammar``, compiled, and stored at
    ``path`` when the cache is writable."""
    import io

    import lark
    from lark.tools.standalone import gen_standalone

    try:
        source = io.StringIO()
        gen_standalone(lark.Lark(grammar, parser="lalr", **options), out=source)
        code = compile(source.getvalue(), f"<bpfvm grammar {path.name}>", "exec")
    except Exception:  # noqa: BLE001 - a lark without the standalone tool: use lark itself
        return None
    write_atomic(path, marshal.dumps(code))
    return code
