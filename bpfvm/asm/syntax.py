"""Parse one line of assembly into its shape: labels, a statement, operands.

The grammar (``grammar.lark``, compiled once and cached by
:mod:`bpfvm.asm.grammar_cache`) has one entry point per
syntax plus one for directives.  This module turns a parse into plain
records: registers, numbers, memory operands, map references, names and
jump targets, each with its column.  It checks nothing about opcodes or
ranges; :mod:`bpfvm.asm.select` does that.  Syntax errors come back as
:class:`LineError` with a column and a readable message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from bpfvm.asm.grammar_cache import load_parser

SYNTAXES = ("conformance", "kernel")
_START = {"conformance": "conf_line", "kernel": "kern_line", "directive": "dir_line"}
_COMMENT = re.compile(r"#|//|;")
_DIRECTIVE_LINE = re.compile(r"\s*\.[A-Za-z_]\w*(\s|$)")

# Human names of grammar terminals, for "expected ..." messages.
_TERMINAL_NAMES = {
    "CREG": "register", "REG": "register", "NAME": "name", "NUMBER": "number",
    "SIGN": "'+' or '-'", "AOP": "assignment operator", "COP": "comparison operator",
    "DIRECTIVE": "directive", "COMMA": "','", "COLON": "':'", "EQUAL": "'='",
    "LSQB": "'['", "RSQB": "']'", "LPAR": "'('", "RPAR": "')'", "STAR": "'*'",
    "$END": "end of line",
}


class LineError(Exception):
    """A syntax error at ``col`` (1-based) of the line being parsed."""

    def __init__(self, col: int, message: str) -> None:
        super().__init__(message)
        self.col = col
        self.message = message


# ---- operand shapes --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reg:
    num: int
    prefix: str  # "r" or "w" (kernel), "%r" (conformance); other text if malformed
    col: int

    def __str__(self) -> str:
        return f"{self.prefix}{self.num}" if self.num >= 0 else self.prefix


@dataclass(frozen=True, slots=True)
class Imm:
    value: int
    col: int
    signed: bool = False  # written with an explicit sign ("+3", "-2")


@dataclass(frozen=True, slots=True)
class Mem:
    reg: Reg
    off: Imm
    col: int
    ctype: str | None = None  # kernel syntax: "u32", "s16"...


@dataclass(frozen=True, slots=True)
class Name:
    text: str
    col: int


@dataclass(frozen=True, slots=True)
class MapRef:
    kind: str  # "map" | "map_value" (anything else is reported by the assembler)
    ref: str | int  # map name or raw index
    off: int
    col: int


Operand = Reg | Imm | Mem | Name | MapRef


@dataclass(frozen=True, slots=True)
class Stmt:
    """One instruction as parsed.

    ``form`` is ``"conf"`` for the conformance syntax (``words`` hold the
    mnemonic words, ``ops`` the operands) or the kernel-syntax form
    (``"k_alu"``, ``"k_load"``...; ``op`` holds its operator or word).
    """

    form: str
    col: int
    words: tuple[Name, ...] = ()
    ops: tuple[Operand, ...] = ()
    op: str = ""
    op_col: int = 0


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    col: int
    args: tuple[tuple[str | None, Name | Imm], ...]  # (key or None, value)


@dataclass(frozen=True, slots=True)
class Line:
    labels: tuple[Name, ...]
    item: Stmt | Directive | None


# ---- parse tree -> records -------------------------------------------------
def _col(tok: Any) -> int:
    return int(tok.column or 1)


def _reg(tok: Any) -> Reg:
    m = re.fullmatch(r"(%?[rw])(\d+)", str(tok))
    if m is None:
        return Reg(-1, str(tok), _col(tok))
    return Reg(int(m.group(2)), m.group(1), _col(tok))


# Significant digits of the widest literal any operand takes (64 bits, plus one
# so that range checks still name a value just past the limit).
_MAX_DIGITS = {16: 17, 2: 65, 10: 21}


def parse_int(text: str, col: int = 1) -> int:
    """A NUMBER token's value: 0x hex, 0b binary, else decimal (leading zeros
    allowed).  A literal with more digits than any 64-bit value needs is a
    :class:`LineError` at ``col`` (so a huge literal never reaches ``int``)."""
    prefix = text[:2].lower()
    base, digits = {"0x": (16, text[2:]), "0b": (2, text[2:])}.get(prefix, (10, text))
    significant = len(digits.lstrip("0"))
    if significant > _MAX_DIGITS[base]:
        shown = text if len(text) <= 24 else f"{text[:12]}...{text[-6:]}"
        raise LineError(col, f"number {shown} ({significant} digits) does not fit in 64 bits")
    return int(digits, base)


def _number(sign: Any, tok: Any) -> Imm:
    value = parse_int(str(tok), _col(tok))
    col = _col(sign) if sign is not None else _col(tok)
    return Imm(-value if sign == "-" else value, col, sign is not None)


def _offset(reg: Any, sign: Any, num: Any) -> Imm:
    if num is None:
        return Imm(0, _col(reg))
    return _number(sign, num)


class _ToRecords:
    """Builds :class:`Line` records; one method per rule or alias (an inline
    transformer: lark calls them as it reduces; a rule without a method
    keeps lark's tree)."""

    # shared
    def num(self, c: list) -> Imm:
        return _number(c[0], c[1])

    def label_ref(self, c: list) -> Name:
        return Name(str(c[0]), _col(c[0]))

    def mapref(self, c: list) -> MapRef:
        kind, ref, sign, num = c
        off = _number(sign, num).value if num is not None else 0
        key: str | int = ref.value if isinstance(ref, Imm) else str(ref)
        return MapRef(str(kind), key, off, _col(kind))

    def label_def(self, c: list) -> Name:
        return Name(str(c[0]), _col(c[0]))

    def _line(self, c: list) -> Line:
        labels = tuple(x for x in c if isinstance(x, Name))
        items = [x for x in c if isinstance(x, Stmt)]
        return Line(labels, items[0] if items else None)

    conf_line = kern_line = _line

    def dir_line(self, c: list) -> Line:
        return Line((), Directive(str(c[0]), _col(c[0]), tuple(c[1:])))

    def dir_kv(self, c: list) -> tuple[str, Imm]:
        return (str(c[0]), c[1])

    def dir_word(self, c: list) -> tuple[None, Name]:
        return (None, Name(str(c[0]), _col(c[0])))

    def dir_num(self, c: list) -> tuple[None, Imm]:
        return (None, c[0])

    # conformance
    def words(self, c: list) -> tuple[Name, ...]:
        return tuple(Name(str(t), _col(t)) for t in c)

    def creg(self, c: list) -> Reg:
        return _reg(c[0])

    def cmem(self, c: list) -> Mem:
        reg = _reg(c[0])
        return Mem(reg, _offset(c[0], c[1], c[2]), reg.col - 1)

    def conf_insn(self, c: list) -> Stmt:
        words = c[0]
        ops = tuple(x for x in c[1:] if x is not None)
        return Stmt("conf", words[0].col, words=words, ops=ops)

    # kernel
    def kreg(self, c: list) -> Reg:
        return _reg(c[0])

    def ctype(self, c: list) -> Name:
        return Name(str(c[0]), _col(c[0]))

    def kaddr(self, c: list) -> Mem:
        return Mem(_reg(c[0]), _offset(c[0], c[1], c[2]), _col(c[0]))

    def skb_abs(self, c: list) -> Imm:
        return c[0]

    def skb_ind(self, c: list) -> Mem:
        return Mem(_reg(c[0]), _offset(c[0], c[1], c[2]), _col(c[0]))

    def farg_typed(self, c: list) -> Mem:
        mem: Mem = c[1]
        return Mem(mem.reg, mem.off, mem.col, str(c[0]))

    def farg_reg(self, c: list) -> Reg | Mem:
        if c[2] is None:
            return _reg(c[0])
        return Mem(_reg(c[0]), _offset(c[0], c[1], c[2]), _col(c[0]))

    def target(self, c: list) -> Imm | Name:
        return c[0]

    def pc_rel(self, c: list) -> Imm | Name:
        if c[0] != "pc":
            return Name(f"{c[0]}{c[1]}{c[2]}", _col(c[0]))
        return _number(c[1], c[2])

    def _k(form: str, op_index: int | None = None) -> Any:  # noqa: N805
        def build(self: _ToRecords, c: list) -> Stmt:
            ops: list[Operand] = []
            op, op_col = "", 0
            for i, x in enumerate(c):
                if i == op_index:
                    op, op_col = str(x), _col(x)
                    continue
                if isinstance(x, str):  # a token (records are not strings)
                    x = _reg(x) if x.type == "REG" else Name(str(x), _col(x))
                if x is not None:
                    ops.append(x)
            col = ops[0].col if ops else 1
            return Stmt(form, col, ops=tuple(ops), op=op, op_col=op_col)

        return build

    k_alu = _k("k_alu", 1)
    k_mov = _k("k_mov")
    k_neg = _k("k_neg", 1)
    k_movsx = _k("k_movsx")
    k_unary = _k("k_unary")
    k_lddw = _k("k_lddw")
    k_lddw_map = _k("k_lddw_map")
    k_load = _k("k_load")
    k_ldpkt = _k("k_ldpkt")
    k_func = _k("k_func")
    k_store = _k("k_store")
    k_lock = _k("k_lock", 2)
    k_jcond = _k("k_jcond", 1)
    k_goto = _k("k_goto")
    k_gotol = _k("k_gotol")
    k_call_name = _k("k_call_name")
    k_call_num = _k("k_call_num")
    k_callx = _k("k_callx")

    def k_exit(self, c: list) -> Stmt:
        return Stmt("k_exit", 1)


@cache
def _loaded() -> tuple[Any, Any]:
    """The parser and the module of its classes (see :mod:`bpfvm.asm.grammar_cache`)."""
    return load_parser(_ToRecords(), start=list(_START.values()), maybe_placeholders=True)


def _parser() -> Any:
    return _loaded()[0]


def strip_comment(text: str) -> str:
    """``text`` without its comment (columns of the rest unchanged)."""
    m = _COMMENT.search(text)
    return text[:m.start()] if m else text


def is_directive(text: str) -> bool:
    return bool(_DIRECTIVE_LINE.match(text))


def parse_line(text: str, syntax: str) -> Line:
    """Parse one comment-free, non-blank line; raise :class:`LineError`."""
    start = _START["directive"] if is_directive(text) else _START[syntax]
    parser, classes = _loaded()
    try:
        line = parser.parse(text, start=start)
    except classes.UnexpectedInput as exc:
        raise _line_error(exc, text, classes) from None
    if line.item is None and not line.labels:
        raise LineError(1, "empty statement")
    return line


def _describe(token: Any) -> str:
    if token.type == "$END":
        return "end of line"
    return f"'{token}'"


def _line_error(exc: Any, text: str, classes: Any) -> LineError:
    col = int(getattr(exc, "column", 0) or 0)
    if isinstance(exc, classes.UnexpectedCharacters):
        return LineError(col or 1, f"unexpected character '{text[col - 1]}'")
    if isinstance(exc, classes.UnexpectedToken):
        if exc.token.type == "$END":
            col = len(text.rstrip()) + 1
        if col == len(text) - len(text.lstrip()) + 1:
            return LineError(col, f"unexpected {_describe(exc.token)}: a line starts with "
                             "an instruction, a label or a directive")
        names = exc.accepts or exc.expected
        expected = sorted({_TERMINAL_NAMES.get(t) or _literal(t) for t in names})
        shown = ", ".join(expected[:6]) + (", ..." if len(expected) > 6 else "")
        return LineError(col or 1, f"unexpected {_describe(exc.token)}; expected {shown}")
    return LineError(col or 1, "syntax error")


def _literal(terminal: str) -> str:
    try:
        pattern = _parser().get_terminal(terminal).pattern
    except KeyError:
        return "end of line" if "END" in terminal else terminal.lower()
    return f"'{pattern.value}'" if pattern.type == "str" else terminal.lower()
