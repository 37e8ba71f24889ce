"""From a parsed statement to instruction slots: pick the opcode, check ranges.

Each syntax has a front end that turns a :class:`~bpfvm.asm.syntax.Stmt`
into candidate specs plus operands in the canonical (conformance) order:
the conformance one looks mnemonics up in :data:`~bpfvm.asm.names.CONF_INDEX`
and lets operand shapes choose among candidates; the kernel one computes a
:func:`~bpfvm.asm.names.kernel_key` from the statement's form.  Then
:func:`bind` places the operands into the fields given by
:func:`~bpfvm.asm.names.layout`, resolves labels, maps and helper names
through a :class:`Scope`, and reports every range error as a
:class:`~bpfvm.asm.syntax.LineError`.  Nothing here reads text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bpfvm import isa
from bpfvm.asm.names import (
    CONF_INDEX,
    CONF_MAX_WORDS,
    KERNEL_ALU_OPS,
    KERNEL_CASTS,
    KERNEL_FUNCS,
    KERNEL_INDEX,
    KERNEL_JMP_OPS,
    KERNEL_WORDS,
    SIZE_OF_CTYPE,
    layout,
)
from bpfvm.asm.syntax import Imm, LineError, MapRef, Mem, Name, Operand, Reg, Stmt, parse_int
from bpfvm.helpers import HelperTable
from bpfvm.isa import Kind, OpSpec
from bpfvm.isa.bits import s32
from bpfvm.isa.insn import MAP_VALUE_OFFSET_MAX, Insn, lddw

S16 = (-(1 << 15), (1 << 15) - 1)
IMM32 = (-(1 << 31), (1 << 32) - 1)  # unsigned spellings of negative numbers allowed
IMM64 = (-(1 << 63), (1 << 64) - 1)
_SHAPE_TEXT = {"reg": "REG", "imm": "IMM", "mem": "[REG+OFF]", "target": "LABEL",
               "helper": "HELPER", "imm64": "IMM64", "map": "map[NAME]",
               "map_value": "map_value[NAME]+OFF"}


@dataclass
class Scope:
    """What binding needs to know about the rest of the file."""

    labels: dict[str, int] = field(default_factory=dict)
    maps: dict[str, int] = field(default_factory=dict)
    helpers: HelperTable | None = None
    pc: int = 0


# ---- shapes ------------------------------------------------------------------
def _fits(shape: str, op: Operand) -> bool:
    if shape in ("reg", "imm", "mem", "imm64"):
        return isinstance(op, {"reg": Reg, "imm": Imm, "mem": Mem, "imm64": Imm}[shape])
    if shape in ("target", "helper"):
        return isinstance(op, Imm | Name)
    return isinstance(op, MapRef) and op.kind == shape


def _matches(spec: OpSpec, ops: tuple[Operand, ...]) -> bool:
    shapes = layout(spec)
    return len(shapes) == len(ops) and all(
        _fits(s, o) for (s, _), o in zip(shapes, ops, strict=True))


def usage(spec: OpSpec) -> str:
    """``add REG, IMM``: how a conformance-syntax statement of ``spec`` looks."""
    return " ".join([spec.conf, ", ".join(_SHAPE_TEXT[s] for s, _ in layout(spec))]).strip()


# ---- conformance front end ---------------------------------------------------
def select_conf(stmt: Stmt) -> tuple[OpSpec, tuple[Operand, ...]]:
    words = stmt.words
    for n in range(min(len(words), CONF_MAX_WORDS), 0, -1):
        mnemonic = " ".join(w.text for w in words[:n])
        specs = CONF_INDEX.get(mnemonic)
        if specs:
            ops = tuple(words[n:]) + stmt.ops
            for op in ops:
                if isinstance(op, Reg) and op.prefix != "%r":
                    raise LineError(op.col, f"bad register '{op}' (expected %r0-%r10)")
            for spec in specs:
                if _matches(spec, ops):
                    return spec, ops
            forms = " or ".join(sorted({usage(s) for s in specs}))
            raise LineError(stmt.col, f"bad operands for '{mnemonic}': expected {forms}")
    raise LineError(stmt.col, f"unknown mnemonic '{words[0].text}'")


# ---- kernel front end --------------------------------------------------------
def _width(reg: Reg) -> int:
    return 64 if reg.prefix == "r" else 32


def _same_width(a: Reg, b: Operand) -> None:
    if isinstance(b, Reg) and b.prefix != a.prefix:
        raise LineError(b.col, f"'{b}' mixes 32-bit (w) and 64-bit (r) registers with '{a}'")


def _need_r(reg: Reg, what: str) -> None:
    if reg.prefix != "r":
        raise LineError(reg.col, f"{what} must be a 64-bit register (r0-r10), not '{reg}'")


def _same_reg(a: Reg, b: Reg, form: str) -> None:
    if a.num != b.num:
        raise LineError(b.col, f"{form} needs the same register on both sides "
                        f"('{a}' and '{b}')")


def _key(key: tuple, what: str, col: int) -> OpSpec:
    spec = KERNEL_INDEX.get(key)
    if spec is None:
        raise LineError(col, f"no instruction {what}")
    return spec


_LOAD_TYPES = frozenset(s.kop for s in isa.TABLE if s.kind is Kind.LDX)
_STORE_TYPES = frozenset(SIZE_OF_CTYPE)
_ATOMIC_TYPES = frozenset(isa.SIZE_CTYPE[s.width] for s in isa.TABLE if s.kind is Kind.ATOMIC)


def _ctype(name: Operand, allowed: frozenset[str]) -> str:
    assert isinstance(name, Name)
    if name.text not in allowed:
        expected = ", ".join(sorted(allowed, key=lambda t: (t[0] == "s", int(t[1:]))))
        raise LineError(name.col, f"bad access type '{name.text}' (expected {expected})")
    return name.text


def _k_alu(stmt: Stmt) -> tuple[OpSpec, tuple]:
    dst, src = stmt.ops
    op = "=" if stmt.form == "k_mov" else stmt.op
    if op not in KERNEL_ALU_OPS:
        raise LineError(stmt.op_col, f"unknown operator '{op}' (expected "
                        + " ".join(sorted(KERNEL_ALU_OPS)) + ")")
    _same_width(dst, src)
    key = ("alu", op, _width(dst), isinstance(src, Reg))
    return _key(key, f"'{dst} {op} ...'", dst.col), (dst, src)


def _k_neg(stmt: Stmt) -> tuple[OpSpec, tuple]:
    dst, src = stmt.ops
    if stmt.op != "-":
        raise LineError(src.col - 1, f"expected '-{src}' (negation)")
    _same_width(dst, src)
    _same_reg(dst, src, "negation")
    return KERNEL_INDEX[("neg", _width(dst))], (dst,)


def _k_movsx(stmt: Stmt) -> tuple[OpSpec, tuple]:
    dst, cast, src = stmt.ops
    kop = f"({cast.text})"
    if kop not in KERNEL_CASTS:
        raise LineError(cast.col, f"bad cast '{kop}' (expected "
                        + ", ".join(sorted(KERNEL_CASTS)) + ")")
    _same_width(dst, src)
    return _key(("movsx", kop, _width(dst)), f"'{dst} = {kop}{src}'", cast.col), (dst, src)


def _k_unary(stmt: Stmt) -> tuple[OpSpec, tuple]:
    dst, word, src = stmt.ops
    if word.text not in KERNEL_WORDS:
        raise LineError(word.col, f"unknown operation '{word.text}' (expected "
                        + ", ".join(sorted(KERNEL_WORDS)) + ")")
    _same_reg(dst, src, word.text)
    return KERNEL_INDEX[("end", word.text)], (dst,)


def _k_lddw(stmt: Stmt) -> tuple[OpSpec, tuple]:
    dst, value = stmt.ops
    _need_r(dst, "the destination of a 64-bit load")
    shape = value.kind if isinstance(value, MapRef) else "imm64"
    if shape not in ("imm64", "map", "map_value"):
        raise LineError(value.col, f"unknown reference '{value.kind}[...]' "
                        "(expected map[NAME] or map_value[NAME])")
    return KERNEL_INDEX[("lddw", shape)], (dst, value)


def _k_load(stmt: Stmt) -> tuple[OpSpec, tuple]:
    dst, ctype, mem = stmt.ops
    c = _ctype(ctype, _LOAD_TYPES)
    spec = _key(("ldx", c), f"loading '{c}'", ctype.col)
    _need_r(mem.reg, "an address register")
    if dst.prefix == "w" and (spec.signed or spec.width == 8):
        raise LineError(dst.col, f"'{dst}' cannot hold a {c} load; use r{dst.num}")
    return spec, (dst, mem)


def _k_ldpkt(stmt: Stmt) -> tuple[OpSpec, tuple]:
    dst, ctype, where = stmt.ops
    c = _ctype(ctype, _STORE_TYPES)
    if dst.prefix != "r" or dst.num != 0:
        raise LineError(dst.col, f"packet loads always write r0, not '{dst}'")
    if isinstance(where, Imm):
        return KERNEL_INDEX[("ldabs", c)], (where,)
    _need_r(where.reg, "an index register")
    return KERNEL_INDEX[("ldind", c)], (where.reg, where.off)


def _k_store(stmt: Stmt) -> tuple[OpSpec, tuple]:
    ctype, mem, src = stmt.ops
    c = _ctype(ctype, _STORE_TYPES)
    _need_r(mem.reg, "an address register")
    if isinstance(src, Reg) and src.prefix == "w" and c == "u64":
        raise LineError(src.col, f"'{src}' cannot be stored as u64; use r{src.num}")
    return KERNEL_INDEX[("store", c, isinstance(src, Reg))], (mem, src)


def _k_lock(stmt: Stmt) -> tuple[OpSpec, tuple]:
    ctype, mem, src = stmt.ops
    c = _ctype(ctype, _ATOMIC_TYPES)
    _need_r(mem.reg, "an address register")
    key = ("lock", stmt.op, SIZE_OF_CTYPE[c])
    if key not in KERNEL_INDEX:
        ops = sorted({k[1] for k in KERNEL_INDEX if k[0] == "lock"})
        raise LineError(stmt.op_col, f"unknown atomic operator '{stmt.op}' (expected "
                        + " ".join(ops) + ")")
    spec = KERNEL_INDEX[key]
    if c == "u64":
        _need_r(src, "the operand of a 64-bit atomic")
    return spec, (mem, src)


def _k_func(stmt: Stmt) -> tuple[OpSpec, tuple]:
    dst, func, *args = stmt.ops
    if func.text not in KERNEL_FUNCS:
        raise LineError(func.col, f"unknown function '{func.text}' (expected "
                        + ", ".join(sorted(KERNEL_FUNCS)) + ")")
    cmpxchg = func.text.startswith("cmpxchg")
    want = 3 if cmpxchg else 2
    if len(args) != want or not isinstance(args[0], Mem) or not all(
            isinstance(a, Reg) for a in args[1:]):
        form = "(ADDR, r0, REG)" if cmpxchg else "((TYPE *)(REG + OFF), REG)"
        raise LineError(func.col, f"bad arguments for '{func.text}': expected "
                        f"{func.text}{form}")
    mem, src = args[0], args[-1]
    candidates = [(size, KERNEL_INDEX.get(("func", func.text, size))) for size in (4, 8)]
    specs = [(size, s) for size, s in candidates if s is not None]
    if mem.ctype is not None:
        size = SIZE_OF_CTYPE.get(mem.ctype)
        specs = [(sz, s) for sz, s in specs if sz == size]
        if not specs:
            raise LineError(mem.col, f"bad access type '{mem.ctype}' for {func.text} "
                            "(expected u32 or u64)")
    spec = specs[-1][1]
    _need_r(mem.reg, "an address register")
    _same_width(dst, src)
    if cmpxchg:
        for reg in (dst, args[1]):
            if reg.num != 0:
                raise LineError(reg.col, f"cmpxchg compares with and writes r0, not '{reg}'")
    else:
        _same_reg(dst, src, func.text)
    if spec.width == 8:
        _need_r(src, "the operand of a 64-bit atomic")
    return spec, (mem, src)


def _k_jcond(stmt: Stmt) -> tuple[OpSpec, tuple]:
    dst, src, target = stmt.ops
    if stmt.op not in KERNEL_JMP_OPS:
        raise LineError(stmt.op_col, f"unknown comparison '{stmt.op}' (expected "
                        + " ".join(sorted(KERNEL_JMP_OPS)) + ")")
    _same_width(dst, src)
    key = ("jcond", stmt.op, _width(dst), isinstance(src, Reg))
    return _key(key, f"'if {dst} {stmt.op} ...'", dst.col), (dst, src, target)


def _k_call_name(stmt: Stmt, env: Scope) -> tuple[OpSpec, tuple]:
    name, *rel = stmt.ops
    if rel:
        if name.text != "pc":
            raise LineError(rel[0].col, f"expected 'call pc{rel[0].text}N' or 'call LABEL'")
        value = parse_int(rel[1].text, rel[1].col)
        return isa.BY_KEY["call_local"], (Imm(-value if rel[0].text == "-" else value,
                                                rel[0].col, True),)
    if name.text in env.labels:
        return isa.BY_KEY["call_local"], (name,)
    return isa.BY_KEY["call"], (name,)


def _fixed(key: str) -> Callable[[Stmt], tuple[OpSpec, tuple]]:
    return lambda stmt: (isa.BY_KEY[key], stmt.ops)


_KERNEL_FORMS: dict[str, Callable[[Stmt], tuple[OpSpec, tuple]]] = {
    "k_alu": _k_alu, "k_mov": _k_alu, "k_neg": _k_neg, "k_movsx": _k_movsx,
    "k_unary": _k_unary, "k_lddw": _k_lddw, "k_lddw_map": _k_lddw, "k_load": _k_load,
    "k_ldpkt": _k_ldpkt, "k_store": _k_store, "k_lock": _k_lock, "k_func": _k_func,
    "k_jcond": _k_jcond, "k_goto": _fixed("ja"), "k_gotol": _fixed("gotol"),
    "k_call_num": _fixed("call"), "k_callx": _fixed("callx"), "k_exit": _fixed("exit"),
}


def select_kernel(stmt: Stmt, env: Scope) -> tuple[OpSpec, tuple[Operand, ...]]:
    for op in stmt.ops:
        reg = op.reg if isinstance(op, Mem) else op
        if isinstance(reg, Reg) and reg.prefix not in ("r", "w"):
            raise LineError(reg.col, f"bad register '{reg}' (expected r0-r10 or w0-w10)")
    if stmt.form == "k_call_name":
        return _k_call_name(stmt, env)
    return _KERNEL_FORMS[stmt.form](stmt)


# ---- binding -------------------------------------------------------------------
def _in_range(value: int, bounds: tuple[int, int], col: int, what: str, bits: int) -> int:
    if not bounds[0] <= value <= bounds[1]:
        raise LineError(col, f"{what} {value} does not fit in {bits} bits")
    return value


def _register(reg: Reg) -> int:
    if not 0 <= reg.num <= isa.FRAME_REG:
        p = reg.prefix if reg.prefix in ("r", "w", "%r") else "r"
        raise LineError(reg.col, f"no register '{reg}' (registers are {p}0-{p}10)")
    return reg.num


def _target(op: Imm | Name, fld: str, env: Scope) -> int:
    bounds, bits = (S16, 16) if fld == "off" else (IMM32, 32)
    if isinstance(op, Imm):
        return _in_range(op.value, bounds, op.col, "jump offset", bits)
    if op.text not in env.labels:
        raise LineError(op.col, f"unknown label '{op.text}'")
    rel = env.labels[op.text] - (env.pc + 1)
    if not bounds[0] <= rel <= bounds[1]:
        hint = " (use ja32/gotol)" if fld == "off" else ""
        raise LineError(op.col, f"label '{op.text}' is {rel} slots away: the offset does not "
                        f"fit in {bits} bits{hint}")
    return rel


def _helper(op: Imm | Name, env: Scope) -> int:
    if isinstance(op, Imm):
        return _in_range(op.value, IMM32, op.col, "helper id", 32)
    spec = None
    if env.helpers is not None:  # bpftool prints the kernel's names: bpf_map_lookup_elem
        spec = env.helpers.by_name(op.text) or env.helpers.by_name(op.text.removeprefix("bpf_"))
    if spec is None:
        raise LineError(op.col, f"unknown helper '{op.text}'")
    return spec.id


def _map(op: MapRef, env: Scope) -> int:
    if isinstance(op.ref, int):
        return _in_range(op.ref, IMM32, op.col, "map index", 32)
    if op.ref not in env.maps:
        raise LineError(op.col, f"unknown map '{op.ref}'")
    return env.maps[op.ref]


def _map_offset(op: MapRef) -> int:
    """The offset of ``map_value[NAME]+OFF``, as :func:`bpfvm.isa.insn.map_value_offset`
    reads it back: unsigned 32 bits (a negative offset would be read as a huge one)."""
    if op.off < 0:
        raise LineError(op.col, f"map value offset {op.off} is negative (the offset is "
                        f"unsigned: 0..{MAP_VALUE_OFFSET_MAX})")
    return _in_range(op.off, (0, MAP_VALUE_OFFSET_MAX), op.col, "map value offset", 32)


def bind(spec: OpSpec, ops: tuple[Operand, ...], env: Scope) -> list[Insn]:
    """The instruction slots of ``spec`` with ``ops``; raises :class:`LineError`."""
    fields = {"dst": 0, "src": 0, "off": 0, "imm": 0}
    if spec.match:
        fields[spec.match[0]] = spec.match[1]
    value = None  # lddw: (64-bit value) or (map index, offset)
    for (shape, fld), op in zip(layout(spec), ops, strict=True):
        if shape == "reg":
            fields[fld] = _register(op)
        elif shape == "mem":
            fields[fld] = _register(op.reg)
            fields["off"] = _in_range(op.off.value, S16, op.off.col, "offset", 16)
        elif shape == "imm":
            fields[fld] = s32(_in_range(op.value, IMM32, op.col, "immediate", 32))
        elif shape == "target":
            fields[fld] = _target(op, fld, env)
        elif shape == "helper":
            fields[fld] = s32(_helper(op, env))
        elif shape == "imm64":
            value = _in_range(op.value, IMM64, op.col, "immediate", 64)
        else:
            value = (_map(op, env) & 0xFFFFFFFF) | (_map_offset(op) << 32)
    if spec.kind is Kind.LDDW:
        return list(lddw(fields["dst"], value or 0, fields["src"]))
    return [Insn(spec.opcode, fields["dst"], fields["src"], fields["off"], fields["imm"])]

