"""What several subcommands share: reading programs and inputs, output."""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfvm.errors import BpfvmError

if TYPE_CHECKING:  # rich, the loader (and so the verifier) load when a command needs them
    from rich.console import Console

    from bpfvm.helpers import HelperTable
    from bpfvm.hookspec import HookSpec
    from bpfvm.program import Program


def progress(out: Console, unit: str) -> Any:
    """A rich progress bar counting ``unit`` (description, bar, N/M, time),
    drawn on ``out`` and silent when it is not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn(unit), TimeElapsedColumn(), console=out, transient=True,
                    disable=not out.is_terminal)


def console(args: argparse.Namespace | None = None, stderr: bool = False) -> Console:
    """A rich console: colours on a terminal, plain text when piped."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """Leave a closed pipe to :func:`bpfvm.cli.main` (one exit code for it)."""
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    no_color = bool(getattr(args, "no_color", False))
    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    # Not a terminal: nothing is cut to 80 columns (tables take the width they need).
    width = None if tty else PIPE_WIDTH
    return _Console(stderr=stderr, no_color=no_color, highlight=False, soft_wrap=not tty,
                    width=width)


PIPE_WIDTH = 1000  # columns of output that goes to a file or a pipe

_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")  # rich's markup tags
_SGR = {"bold": "1", "dim": "2", "italic": "3", "underline": "4", "red": "31", "green": "32",
        "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36", "white": "37"}


class TextConsole:
    """Lines of text with rich's simple markup (``[bold red]...[/]``),
    printed without loading rich (a tenth of a second of start-up): ANSI
    colours on a terminal, plain text elsewhere.  Markup it does not know,
    and anything but a string, goes to a rich console made on first need."""

    def __init__(self, args: argparse.Namespace | None = None, stderr: bool = False) -> None:
        self.args, self.stderr = args, stderr
        stream = sys.stderr if stderr else sys.stdout
        try:
            self.is_terminal = stream.isatty()
        except (AttributeError, ValueError):
            self.is_terminal = False
        self.color = self.is_terminal and not getattr(args, "no_color", False) and \
            "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        self._rich: Console | None = None

    def print(self, obj: object = "", *, markup: bool = True, highlight: bool = False) -> None:
        text = (obj if not markup else self.render(obj)) if isinstance(obj, str) else None
        if text is None:
            if self._rich is None:
                self._rich = console(self.args, self.stderr)
            self._rich.print(obj, markup=markup, highlight=highlight)
            return
        print(text, file=sys.stderr if self.stderr else sys.stdout)

    def render(self, markup: str) -> str | None:
        """``markup`` as text (with colours when on), or None for markup not handled here."""
        out: list[str] = []
        stack: list[str] = []
        pos = 0
        for m in _TAG.finditer(markup):
            whole, escapes, tag = m.groups()
            out.append(markup[pos:m.start()])
            pos = m.end()
            out.append(escapes[:len(escapes) // 2])
            if len(escapes) % 2:  # an escaped bracket: literal text
                out.append(whole[len(escapes):])
                continue
            if tag.startswith("/"):
                if not stack or (tag != "/" and tag[1:] != stack[-1]):
                    return None
                stack.pop()
                if self.color:
                    out.append("\x1b[0m" + "".join(_ansi(s) for s in stack))
                continue
            if not all(word in _SGR for word in tag.split()):
                return None
            stack.append(tag)
            if self.color:
                out.append(_ansi(tag))
        out.append(markup[pos:])
        if stack and self.color:
            out.append("\x1b[0m")
        return "".join(out)


def _ansi(style: str) -> str:
    return "\x1b[" + ";".join(_SGR[w] for w in style.split()) + "m"


def escape(text: str) -> str:
    """``text`` with what looks like markup escaped (as ``rich.markup.escape``)."""
    text = _ESCAPE(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    if text.endswith("\\") and not text.endswith("\\\\"):
        text += "\\"
    return text


_ESCAPE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])").sub


def helpers() -> HelperTable:
    """The helper table of every program the CLI handles: the standard
    helpers and the MM core's."""
    from mmcore.hooks.helpers import policy_helpers

    return policy_helpers()


def hooks() -> dict[str, HookSpec]:
    """The hook records of every program the CLI handles: the MM core's."""
    from mmcore.hooks.specs import HOOKS

    return HOOKS


def hook_names() -> list[str]:
    return list(hooks())


def header_text() -> str:
    """``bpfvm.h`` for the CLI's hooks and helpers (what ``bpfvm header`` prints
    and what ``bpfvm cc`` and C programs compile against)."""
    from bpfvm.asm.header import generate

    return generate(hooks(), helpers())


def load_programs(path: str | Path, syntax: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> list[Program]:
    """Every program of a file (see :func:`bpfvm.load.read_programs`); an
    object file's hook must be a known one."""
    from bpfvm.load import read_programs

    programs = read_programs(path, helpers(), syntax, hooks(), progress)
    if Path(path).suffix.lower() == ".json":
        known = hook_names()
        for program in programs:
            if program.hook is not None and program.hook not in known:
                raise BpfvmError(f"{path}: hook: unknown hook '{program.hook[:40]}' "
                                 f"(known: {', '.join(known)}; null for none)")
    return programs


def load_program(path: str | Path, syntax: str | None = None,
                 section: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> Program:
    """The program of a file, or of its ``.hook`` section ``section`` (which
    must exist: a ``--section`` that selects nothing is an error)."""
    from bpfvm.asm.sections import pick_section

    programs = load_programs(path, syntax, progress)
    if section is not None and not any(p.hook == section for p in programs):
        hooks = [str(p.hook) for p in programs if p.hook is not None]
        have = f"its sections: {', '.join(hooks)}" if hooks else "it has no .hook sections"
        raise BpfvmError(f"{path}: --section {section}: no program for that hook ({have})")
    return pick_section(programs, section, str(path))


def add_section_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--section", metavar="HOOK",
                        help="in a file of several programs, the one for this hook")


def parse_hex(text: str, where: str = "--mem") -> bytearray:
    """Bytes from hex text: ``"00 01 ff"``, ``"0001ff"`` or ``0x``-less words."""
    cleaned = "".join(text.split())
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        return bytearray(bytes.fromhex(cleaned))
    except ValueError:
        raise BpfvmError(f"{where}: not hex bytes: {text[:40]!r}") from None


def parse_size_arg(text: str, flag: str) -> int:
    """A size on the command line: bytes, or with a unit (``64KiB``)."""
    from bpfvm.limits import parse_size

    try:
        return parse_size(text)
    except (TypeError, ValueError) as exc:
        raise BpfvmError(f"{flag}: {exc}") from None


def check_output(dest: str, flag: str = "-o", inputs: Iterable[str | Path] = ()) -> None:
    """Refuse an output path that cannot be written (a directory, a missing
    directory) or that names one of ``inputs``.  ``-`` (stdout) is fine."""
    if dest == "-":
        return
    if not dest:
        raise BpfvmError(f"{flag}: empty path")
    path = Path(dest)
    if path.is_dir():
        raise BpfvmError(f"{flag} {dest}: is a directory")
    parent = path.parent
    if not parent.is_dir():
        why = "not a directory" if parent.exists() else "no such directory"
        raise BpfvmError(f"{flag} {dest}: {parent}: {why}")
    for src in inputs:
        try:
            same = Path(src).resolve() == path.resolve() or \
                (path.exists() and os.path.samefile(src, path))
        except OSError:
            same = False
        if same:
            raise BpfvmError(f"{flag} {dest}: is the input file; refusing to overwrite it")
    try:  # the directory must take the temporary file the write goes through
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise BpfvmError(f"{flag} {dest}: {parent}: cannot write there "
                         f"({exc.strerror or type(exc).__name__})") from None
    os.close(fd)
    os.unlink(probe)


def write_output(dest: str, data: bytes | str, flag: str = "-o",
                 inputs: Iterable[str | Path] = ()) -> None:
    """Write ``data`` to ``dest`` (``-``: stdout) whole or not at all: into
    a temporary file beside it, then renamed over it.  Errors read
    ``flag DEST: what``."""
    check_output(dest, flag, inputs)
    raw = data.encode() if isinstance(data, str) else data
    if dest == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        return
    path = Path(dest)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise BpfvmError(f"{flag} {dest}: cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))
