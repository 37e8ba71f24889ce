"""How each operation of the ISA table is spelled in the two assembly syntaxes.

Everything here is derived from :data:`bpfvm.isa.TABLE` (``conf``, ``kop``,
``kind``, ``width``...): the conformance mnemonics with their aliases, the
kernel-syntax lookup key of each operation, and the operand layout shared by
both syntaxes (which operand goes to which instruction field).  The
assembler reads these tables in one direction, the disassembler in the
other.  Nothing here parses or prints text.
"""

from __future__ import annotations

from types import MappingProxyType

from bpfvm import isa
from bpfvm.isa import Kind, OpSpec

# Operand layout: (shape, field) per operand, in the order the conformance
# syntax writes them.  Shapes: reg, imm, mem (register + offset), target
# (label or relative offset), helper (id or name), imm64, map, map_value.
_REG_DST = ("reg", "dst")
_LAYOUT_BY_KIND: dict[tuple[Kind, bool], tuple[tuple[str, str], ...]] = {
    (Kind.ALU, False): (_REG_DST, ("imm", "imm")),
    (Kind.ALU, True): (_REG_DST, ("reg", "src")),
    (Kind.MOV, False): (_REG_DST, ("imm", "imm")),
    (Kind.MOV, True): (_REG_DST, ("reg", "src")),
    (Kind.NEG, False): (_REG_DST,),
    (Kind.MOVSX, True): (_REG_DST, ("reg", "src")),
    (Kind.END, False): (_REG_DST,),
    (Kind.JCOND, False): (_REG_DST, ("imm", "imm"), ("target", "off")),
    (Kind.JCOND, True): (_REG_DST, ("reg", "src"), ("target", "off")),
    (Kind.CALL, False): (("helper", "imm"),),
    (Kind.CALL_LOCAL, False): (("target", "imm"),),
    (Kind.CALLX, False): (_REG_DST,),
    (Kind.EXIT, False): (),
    (Kind.LDX, True): (_REG_DST, ("mem", "src")),
    (Kind.ST, False): (("mem", "dst"), ("imm", "imm")),
    (Kind.STX, True): (("mem", "dst"), ("reg", "src")),
    (Kind.ATOMIC, True): (("mem", "dst"), ("reg", "src")),
    (Kind.LDABS, False): (("imm", "imm"),),
    (Kind.LDIND, True): (("reg", "src"), ("imm", "imm")),
}
_LDDW_SHAPE = {isa.PSEUDO_IMM64: "imm64", isa.PSEUDO_MAP_FD: "map",
               isa.PSEUDO_MAP_VALUE: "map_value"}
SIZE_OF_CTYPE = MappingProxyType({c: s for s, c in isa.SIZE_CTYPE.items()})


def layout(spec: OpSpec) -> tuple[tuple[str, str], ...]:
    """The operands of ``spec``: (shape, field) pairs in conformance order."""
    if spec.kind is Kind.LDDW:
        assert spec.match is not None
        return (_REG_DST, (_LDDW_SHAPE[spec.match[1]], "imm"))
    if spec.kind is Kind.JA:
        return (("target", "off" if "off" in spec.uses else "imm"),)
    return _LAYOUT_BY_KIND[(spec.kind, spec.src_reg)]


def conf_names(spec: OpSpec) -> tuple[str, ...]:
    """Conformance mnemonics of ``spec``, the canonical one first."""
    names = [spec.conf]
    if spec.cls == isa.Cls.ALU64 and spec.kind in (Kind.ALU, Kind.MOV, Kind.NEG):
        names.append(spec.conf + "64")
    if spec.op == "bswap":
        names.append(spec.conf[1:])  # swap16
    if spec.kind is Kind.ATOMIC and spec.op in ("xchg", "cmpxchg"):
        names.append(spec.conf.replace("lock ", "lock fetch "))
    return tuple(names)


def kernel_func(spec: OpSpec) -> str:
    """Function-like kernel spelling of a fetching atomic (``atomic_fetch_add``,
    ``xchg_64``, ``cmpxchg32_32``)."""
    if spec.op in ("xchg", "cmpxchg"):
        return f"{spec.op}_64" if spec.width == 8 else f"{spec.op}32_32"
    return f"atomic_{spec.op}"


def is_fetch(spec: OpSpec) -> bool:
    """True for atomics that write a register (fetch variants, xchg, cmpxchg)."""
    return spec.kind is Kind.ATOMIC and bool(spec.match and spec.match[1] & isa.ATOMIC_FETCH)


def kernel_key(spec: OpSpec) -> tuple:
    """The key the kernel-syntax front end computes for a statement of ``spec``."""
    k = spec.kind
    if k in (Kind.ALU, Kind.MOV):
        return ("alu", spec.kop, spec.width, spec.src_reg)
    if k is Kind.JCOND:
        return ("jcond", spec.kop, spec.width, spec.src_reg)
    if k in (Kind.NEG,):
        return ("neg", spec.width)
    if k is Kind.MOVSX:
        return ("movsx", spec.kop, spec.width)
    if k is Kind.ATOMIC:
        if is_fetch(spec):
            return ("func", kernel_func(spec), spec.width)
        return ("lock", spec.kop, spec.width)
    if k in (Kind.LDDW,):
        return ("lddw", _LDDW_SHAPE[spec.match[1]] if spec.match else "imm64")
    if k in (Kind.ST, Kind.STX):
        return ("store", spec.kop, k is Kind.STX)
    if k in (Kind.END, Kind.JA, Kind.LDX, Kind.LDABS, Kind.LDIND):
        return (k.value, spec.kop)
    return (k.value,)


def _conf_index() -> dict[str, tuple[OpSpec, ...]]:
    index: dict[str, list[OpSpec]] = {}
    for s in isa.TABLE:  # one pass: the specs of each name stay in table order
        for name in dict.fromkeys(conf_names(s)):
            index.setdefault(name, []).append(s)
    return {name: tuple(specs) for name, specs in index.items()}


CONF_INDEX: MappingProxyType[str, tuple[OpSpec, ...]] = MappingProxyType(_conf_index())
CONF_MAX_WORDS = max(len(name.split()) for name in CONF_INDEX)
KERNEL_INDEX: MappingProxyType[tuple, OpSpec] = MappingProxyType(
    {kernel_key(s): s for s in isa.TABLE})
KERNEL_FUNCS = frozenset(kernel_func(s) for s in isa.TABLE if is_fetch(s))
KERNEL_WORDS = frozenset(s.kop for s in isa.TABLE if s.kind is Kind.END)
KERNEL_CASTS = frozenset(s.kop for s in isa.TABLE if s.kind is Kind.MOVSX)
KERNEL_ALU_OPS = frozenset(s.kop for s in isa.TABLE if s.kind in (Kind.ALU, Kind.MOV))
KERNEL_JMP_OPS = frozenset(s.kop for s in isa.TABLE if s.kind is Kind.JCOND)
assert len(KERNEL_INDEX) == len(isa.TABLE), "kernel spellings must be unique"
