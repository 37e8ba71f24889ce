"""The assembler's compiled grammar, kept between runs in the user's cache.

Building the LALR tables from ``grammar.lark`` takes longer than a short
command's whole run, so :func:`load_parser` keeps lark's serialised parser
(``Lark.save``) in ``$XDG_CACHE_HOME/bpfvm`` (default ``~/.cache/bpfvm``)
under a name made of the hash of the grammar text, the lark version and the Python version: a
changed grammar or an upgraded lark gets a new file, never a stale one.  The
file is written atomically (a temporary file renamed into place), so two
processes starting at once never read half a file; a cache that cannot be
read or written (read-only home, full disk, a corrupt file) only costs the
build, never an error.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

GRAMMAR = Path(__file__).with_name("grammar.lark")
# Options given again at each load (objects of this run), never pickled.
_NOT_STORED = ("transformer", "postlex", "lexer_callbacks", "_plugins")


def cache_dir() -> Path:
    """Where bpfvm keeps files it can rebuild: ``$XDG_CACHE_HOME/bpfvm``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bpfvm"


def cache_path(grammar: str, options: dict[str, Any]) -> Path:
    """The cache file for ``grammar`` built with ``options`` by this lark
    and this Python."""
    import lark

    key = "\0".join([grammar, repr(sorted(options.items())), lark.__version__,
                     "{}.{}".format(*sys.version_info[:2])])
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir() / f"asm-grammar-{digest}.lark.pickle"


def load_parser(transformer: Any, **options: Any):
    """A ``lark.Lark`` LALR parser for ``grammar.lark`` with ``options``
    (starts, placeholders) and the inline ``transformer``: from the cache
    when a valid entry exists, else built (and stored when possible)."""
    from lark import Lark

    grammar = GRAMMAR.read_text(encoding="utf-8")
    path = cache_path(grammar, options)
    try:
        with path.open("rb") as f:
            return Lark.__new__(Lark)._load(f, transformer=transformer)
    except Exception:  # noqa: BLE001 - a missing or unreadable entry: rebuild it
        pass
    parser = Lark(grammar, parser="lalr", transformer=transformer, **options)
    _store(parser, path)
    return parser


def _store(parser, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            parser.save(f, _NOT_STORED)
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError):
        try:
            tmp.unlink()
        except OSError:
            pass
