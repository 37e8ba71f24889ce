"""Assemble text in either syntax into a :class:`~bpfvm.program.Program`.

Two passes over the lines of a file.  The first strips comments, parses
each line on its own (:mod:`bpfvm.asm.syntax`), handles directives and
gives every label its slot number.  The second picks each statement's
opcode and checks its operands (:mod:`bpfvm.asm.select`), now that every
label and map is known.  Every error of the file is collected and raised
together as :class:`AsmErrors`, each reading ``file:line:col: message``
followed by the source line and a caret.

Syntax: ``"conformance"`` (``mov %r0, 1``), ``"kernel"`` (``r0 = 1``) or
None to take it from a ``.syntax`` directive or, failing that, detect it
from the first instruction that only one syntax can read.

Directives (both syntaxes, one per line)::

    .syntax kernel|conformance     must come before the first instruction
    .hook NAME                     the hook the program attaches to
    .map NAME array|hash key=4 value=8 entries=16
    .raw 0x0000000100000018        one raw slot (64-bit little-endian word)
    .object NAME SIZE              the size of an object the hook points at
                                   (bytes or with a unit: 512KiB); what the
                                   verifier assumes unless told otherwise

Maps are numbered in declaration order; ``lddw %r1, map[NAME]`` /
``r1 = map[NAME] ll`` load a map handle, ``map_value[NAME]+OFF`` the
address of byte OFF of the value of key 0.  ``exit`` labels the first exit
instruction unless a label of that name exists.  This module does not
check whole-program validity (jump ranges, reachability): that is
:func:`bpfvm.isa.insn.check` and the verifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bpfvm.asm.names import CONF_INDEX
from bpfvm.asm.select import Scope, bind, select_conf, select_kernel
from bpfvm.asm.syntax import (
    SYNTAXES,
    Directive,
    Imm,
    Line,
    LineError,
    Name,
    Stmt,
    is_directive,
    parse_line,
    strip_comment,
)
from bpfvm.errors import BpfvmError
from bpfvm.helpers import HelperTable
from bpfvm.isa.insn import Insn, decode
from bpfvm.limits import MAX_OBJECT_SIZE, format_size, parse_size
from bpfvm.program import MAP_KINDS, MapDef, Program, SourceLoc
from bpfvm.stdhelpers import standard_helpers

Progress = Callable[[int, int], None]  # (done, total)
PROGRESS_LINES = 4096  # lines read between two progress calls

_CONF_HINT = re.compile(r"%[A-Za-z]|^\s*call\s+local\b")
_KERNEL_HINT = re.compile(r"=|\bgotol?\b|^\s*if\b|\bcallx\b|\*\s*\(")
_LABELS = re.compile(r"^\s*([A-Za-z_.$][\w.$]*\s*:\s*)+")
_CONF_FIRST = frozenset(n.split()[0] for n in CONF_INDEX) - {"call", "exit"}
_MAP_KEYS = {"key": "key_size", "key_size": "key_size", "value": "value_size",
             "value_size": "value_size", "entries": "max_entries",
             "max_entries": "max_entries"}


@dataclass(frozen=True, slots=True)
class AsmError:
    """One assembly error: where, what, and the offending line."""

    file: str
    line: int
    col: int
    message: str
    source_line: str

    def __str__(self) -> str:
        line, col = self.source_line, self.col
        if len(line) > _SHOWN:  # a window around the column of a very long line
            start = max(0, min(col - 1 - _SHOWN // 2, len(line) - _SHOWN))
            head, tail = "..." if start else "", "..." if start + _SHOWN < len(line) else ""
            line = head + line[start:start + _SHOWN] + tail
            col = col - start + len(head)
        prefix = "".join(c if c == "\t" else " " for c in line[:col - 1])
        return (f"{self.file}:{self.line}:{self.col}: {self.message}\n"
                f"{line}\n{prefix}^")


_SHOWN = 120  # characters of a source line an error shows


class AsmErrors(BpfvmError):
    """Every error found in one file, in line order."""

    def __init__(self, errors: list[AsmError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.line, e.col))
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass
class _State:
    """What the first pass learns about a file."""

    filename: str
    lines: list[str]
    syntax: str
    errors: list[AsmError] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    label_lines: dict[str, int] = field(default_factory=dict)
    maps: list[MapDef] = field(default_factory=list)
    map_lines: dict[str, int] = field(default_factory=dict)
    hook: str | None = None
    objects: dict[str, int] = field(default_factory=dict)
    object_lines: dict[str, int] = field(default_factory=dict)
    stmts: list[tuple[int, int, Stmt | Insn]] = field(default_factory=list)  # (line, pc, item)
    pc: int = 0
    exit_pc: int | None = None
    parsed: dict[str, Line] = field(default_factory=dict)  # identical lines parse once

    def error(self, lineno: int, col: int, message: str) -> None:
        self.errors.append(AsmError(self.filename, lineno, max(col, 1), message,
                                    self.lines[lineno - 1]))


def detect_syntax(text: str) -> str | None:
    """The syntax of the first instruction only one syntax reads, or None."""
    for raw in text.splitlines():
        code = strip_comment(raw)
        if not code.strip() or is_directive(code):
            continue
        code = _LABELS.sub("", code)
        words = code.split()
        if not words:
            continue
        if _KERNEL_HINT.search(code):
            return "kernel"
        if _CONF_HINT.search(code) or words[0] in _CONF_FIRST:
            return "conformance"
    return None


def _declared_syntax(state: _State, requested: str | None) -> str | None:
    """The syntax named by ``.syntax`` (checked against ``requested``)."""
    for lineno, raw in enumerate(state.lines, 1):
        code = strip_comment(raw)
        if not code.strip():
            continue
        if not is_directive(code):
            return None
        words = code.split()
        if words[0] != ".syntax":
            continue
        if len(words) != 2 or words[1] not in SYNTAXES:
            return None  # reported by the directive handler
        if requested and words[1] != requested:
            state.error(lineno, code.index(words[1]) + 1,
                        f"file declares .syntax {words[1]} but {requested} was requested")
        return words[1]
    return None


def assemble(text: str, filename: str = "<input>", syntax: str | None = None,
             helpers: HelperTable | None = None,
             progress: Progress | None = None) -> Program:
    """Assemble ``text``; raise :class:`AsmErrors` listing every error.

    ``helpers`` resolves ``call NAME`` (default: the standard helpers; a
    host with helpers of its own, as the MM core, passes its table).
    ``progress(lines done, lines)`` is called every :data:`PROGRESS_LINES`
    lines read and once at the end of the reading.
    """
    if syntax is not None and syntax not in SYNTAXES:
        raise BpfvmError(f"unknown syntax '{syntax}' (expected {' or '.join(SYNTAXES)})")
    state = _State(filename, text.splitlines(), "kernel")
    declared = _declared_syntax(state, syntax)
    state.syntax = syntax or declared or detect_syntax(text) or "kernel"
    total = len(state.lines)
    for lineno, raw in enumerate(state.lines, 1):
        _first_pass(state, lineno, strip_comment(raw))
        if progress is not None and lineno % PROGRESS_LINES == 0:
            progress(lineno, total)
    if progress is not None:
        progress(total, total)
    if "exit" not in state.labels and state.exit_pc is not None:
        state.labels["exit"] = state.exit_pc
    env = Scope(labels=state.labels, maps={m.name: i for i, m in enumerate(state.maps)},
              helpers=helpers if helpers is not None else standard_helpers())
    insns: list[Insn] = []
    source: list[SourceLoc | None] = []
    for lineno, pc, item in state.stmts:
        env.pc = pc
        try:
            slots = [item] if isinstance(item, Insn) else _encode(item, state.syntax, env)
        except LineError as exc:
            state.error(lineno, exc.col, exc.message)
            slots = [Insn(0)] * _slots(item, state.syntax)
        insns.extend(slots)
        source.extend([SourceLoc(filename, lineno)] * len(slots))
    if state.errors:
        raise AsmErrors(state.errors)
    name = Path(filename).stem if not filename.startswith("<") else "prog"
    return Program(insns, state.maps, state.hook, source, name, state.objects)


def assemble_file(path: str | Path, syntax: str | None = None,
                  helpers: HelperTable | None = None) -> Program:
    """Assemble the file at ``path`` (UTF-8 text)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BpfvmError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") \
            from None
    return assemble(text, str(path), syntax, helpers)


def _encode(stmt: Stmt, syntax: str, env: Scope) -> list[Insn]:
    if syntax == "conformance":
        spec, ops = select_conf(stmt)
    else:
        spec, ops = select_kernel(stmt, env)
    return bind(spec, ops, env)


def _slots(item: Stmt | Insn, syntax: str) -> int:
    if isinstance(item, Insn):
        return 1
    if syntax == "conformance":
        return 2 if item.words[0].text == "lddw" else 1
    return 2 if item.form in ("k_lddw", "k_lddw_map") else 1


def _other_syntax_hint(code: str, syntax: str) -> str:
    other = SYNTAXES[1 - SYNTAXES.index(syntax)]
    try:
        parse_line(code, other)
    except LineError:
        return ""
    return f" (this line is {other} syntax but the file is {syntax} syntax; " \
        "a file uses one syntax, chosen by .syntax or by its first instruction)"


def _is_exit(stmt: Stmt) -> bool:
    return stmt.form == "k_exit" or (stmt.form == "conf" and len(stmt.words) == 1
                                     and stmt.words[0].text == "exit" and not stmt.ops)


def _first_pass(state: _State, lineno: int, code: str) -> None:
    if not code.strip():
        return
    try:
        line = state.parsed.get(code) or parse_line(code, state.syntax)
        state.parsed[code] = line
    except LineError as exc:
        state.error(lineno, exc.col, exc.message + _other_syntax_hint(code, state.syntax))
        return
    for label in line.labels:
        if label.text in state.labels:
            first = state.label_lines[label.text]
            state.error(lineno, label.col, f"duplicate label '{label.text}' "
                        f"(first defined on line {first})")
            continue
        state.labels[label.text] = state.pc
        state.label_lines[label.text] = lineno
    item = line.item
    if isinstance(item, Directive):
        try:
            _directive(state, lineno, item)
        except LineError as exc:
            state.error(lineno, exc.col, exc.message)
    elif isinstance(item, Stmt):
        if state.exit_pc is None and _is_exit(item):
            state.exit_pc = state.pc
        state.stmts.append((lineno, state.pc, item))
        state.pc += _slots(item, state.syntax)


# ---- directives -------------------------------------------------------------------
def _directive(state: _State, lineno: int, d: Directive) -> None:
    handler = _DIRECTIVES.get(d.name)
    if handler is None:
        raise LineError(d.col, f"unknown directive '{d.name}' (expected "
                        + ", ".join(_DIRECTIVES) + ")")
    handler(state, lineno, d)


def _words(d: Directive, count: int, usage: str) -> list[Name]:
    words = [v for k, v in d.args if k is None and isinstance(v, Name)]
    if len(d.args) != count or len(words) != count:
        raise LineError(d.col, f"usage: {usage}")
    return words


def _syntax_directive(state: _State, lineno: int, d: Directive) -> None:
    (word,) = _words(d, 1, ".syntax kernel|conformance")
    if word.text not in SYNTAXES:
        raise LineError(word.col, f"unknown syntax '{word.text}' "
                        f"(expected {' or '.join(SYNTAXES)})")
    if state.stmts:
        raise LineError(d.col, ".syntax must come before the first instruction")


def _hook_directive(state: _State, lineno: int, d: Directive) -> None:
    (word,) = _words(d, 1, ".hook NAME")
    if state.hook is not None:
        raise LineError(d.col, f"second .hook (the program already attaches to {state.hook})")
    state.hook = word.text


def _map_directive(state: _State, lineno: int, d: Directive) -> None:
    usage = ".map NAME array|hash key=N value=N entries=N"
    positional = [v for k, v in d.args if k is None]
    if len(positional) != 2 or not all(isinstance(v, Name) for v in positional):
        raise LineError(d.col, f"usage: {usage}")
    name, kind = positional
    if kind.text not in MAP_KINDS:
        raise LineError(kind.col, f"unknown map type '{kind.text}' "
                        f"(expected {' or '.join(MAP_KINDS)})")
    sizes = {"key_size": 4} if kind.text == "array" else {}
    for key, value in d.args:
        if key is None:
            continue
        if key not in _MAP_KEYS:
            raise LineError(value.col - len(key) - 1, f"unknown map attribute '{key}' "
                            "(expected key, value, entries)")
        sizes[_MAP_KEYS[key]] = value.value
    missing = [k for k in ("key_size", "value_size", "max_entries") if k not in sizes]
    if missing:
        raise LineError(d.col, f"map '{name.text}' lacks {', '.join(missing)}; usage: {usage}")
    mapdef = MapDef(name.text, kind.text, **sizes)
    if (why := mapdef.problem()) is not None:
        raise LineError(d.col, f"map '{name.text}': {why}")
    if name.text in state.map_lines:
        raise LineError(name.col, f"duplicate map '{name.text}' (first declared on line "
                        f"{state.map_lines[name.text]})")
    state.map_lines[name.text] = lineno
    state.maps.append(mapdef)


def _raw_directive(state: _State, lineno: int, d: Directive) -> None:
    if len(d.args) != 1 or not isinstance(d.args[0][1], Imm) or d.args[0][0] is not None:
        raise LineError(d.col, "usage: .raw 0xWORD (one 64-bit instruction word)")
    value = d.args[0][1]
    if not 0 <= value.value < 1 << 64:
        raise LineError(value.col, f"raw word {value.value} does not fit in 64 bits")
    state.stmts.append((lineno, state.pc, decode(value.value.to_bytes(8, "little"))[0]))
    state.pc += 1


_OBJECT_LINE = re.compile(r"^(\s*\.object)(\s+)(\S+)?(\s*)(.*?)\s*$")


def _object_directive(state: _State, lineno: int, d: Directive) -> None:
    usage = ".object NAME SIZE (bytes, or with a unit: .object region 512KiB)"
    # The size is read from the text (512KiB is one word to the user, two tokens to the grammar).
    m = _OBJECT_LINE.match(strip_comment(state.lines[lineno - 1]))
    if not m or not m.group(3) or not m.group(5):
        raise LineError(d.col, f"usage: {usage}")
    name, text = m.group(3), m.group(5)
    name_col = len(m.group(1)) + len(m.group(2)) + 1
    size_col = name_col + len(name) + len(m.group(4))
    if not re.fullmatch(r"[A-Za-z_][\w]*", name):
        raise LineError(name_col, f"'{name[:40]}' is not an object name; usage: {usage}")
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise LineError(size_col, f".object {name}: {exc}") from None
    if not 1 <= size <= MAX_OBJECT_SIZE:
        raise LineError(size_col, f".object {name}: {size} bytes is outside 1 byte to "
                        f"{format_size(MAX_OBJECT_SIZE)}")
    if name in state.object_lines:
        raise LineError(name_col, f"second .object {name} (first declared on line "
                        f"{state.object_lines[name]})")
    state.object_lines[name] = lineno
    state.objects[name] = size


_DIRECTIVES = {".syntax": _syntax_directive, ".hook": _hook_directive, ".map": _map_directive,
               ".raw": _raw_directive, ".object": _object_directive}
