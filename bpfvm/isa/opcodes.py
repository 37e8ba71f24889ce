"""The eBPF instruction set as one table (RFC 9669, v1 to v4, plus callx).

Every fact about an opcode lives in an :class:`OpSpec` record of
:data:`TABLE`: its class and operation, operand usage, widths, signedness,
the mnemonics of both assembly syntaxes, its conformance group and the ISA
version that introduced it.  Opcodes are composed from fields
(``ALU64 | ADD | X``), never listed one by one.  Several operations share an
opcode byte and are told apart by another field (``off`` for sdiv/smod and
movsx, ``imm`` for byte swaps and atomics, ``src`` for call kinds and lddw
pseudo sources); a spec names that field in ``match``.

This module only describes; :mod:`bpfvm.isa.insn` decodes and checks bytes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum, IntEnum


class Cls(IntEnum):
    """The instruction class (low three bits of the opcode)."""

    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


SRC_K = 0x00  # operand is the immediate
SRC_X = 0x08  # operand is the source register

SIZE_BITS = {4: 0x00, 2: 0x08, 1: 0x10, 8: 0x18}  # access size in bytes -> field
SIZE_SUFFIX = {1: "b", 2: "h", 4: "w", 8: "dw"}
SIZE_CTYPE = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}

MODE_IMM = 0x00
MODE_ABS = 0x20
MODE_IND = 0x40
MODE_MEM = 0x60
MODE_MEMSX = 0x80
MODE_ATOMIC = 0xC0

ATOMIC_FETCH = 0x01

# lddw pseudo sources (the kernel's BPF_PSEUDO_MAP_FD and friends).
PSEUDO_IMM64 = 0
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2

# call kinds (src field of JMP|CALL)
CALL_HELPER = 0
CALL_LOCAL = 1

NUM_REGS = 11  # r0..r10
FRAME_REG = 10


class Kind(Enum):
    """What an instruction does, coarsely; engines dispatch on it."""

    ALU = "alu"  # dst = dst OP src|imm
    NEG = "neg"  # dst = -dst
    MOV = "mov"  # dst = src|imm
    MOVSX = "movsx"  # dst = sign-extend(src, off bits)
    END = "end"  # byte swap / conversion, width in imm
    JA = "ja"  # pc += off (JMP) or imm (JMP32: gotol)
    JCOND = "jcond"  # if dst OP src|imm: pc += off
    CALL = "call"  # helper call, id in imm
    CALL_LOCAL = "call_local"  # bpf-to-bpf call, pc += imm
    CALLX = "callx"  # call the helper whose id is in register dst
    EXIT = "exit"
    LDDW = "lddw"  # 64-bit immediate load, two slots
    LDX = "ldx"  # dst = *(size *)(src + off), zero- or sign-extended
    ST = "st"  # *(size *)(dst + off) = imm
    STX = "stx"  # *(size *)(dst + off) = src
    ATOMIC = "atomic"  # atomic read-modify-write on *(size *)(dst + off)
    LDABS = "ldabs"  # legacy packet load: r0 = ntoh(*(size *)(pkt + imm))
    LDIND = "ldind"  # legacy packet load: r0 = ntoh(*(size *)(pkt + src + imm))

    # members are singletons compared by identity: hash them so too (Enum's
    # own __hash__ is a Python call, and dispatch tables are keyed by Kind)
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class OpSpec:
    """Everything known about one operation.

    ``uses`` names the fields carrying operands; every other field must be
    zero, except the one named by ``match`` which must equal its value.
    ``width`` is the operating width in bits for ALU and jumps, the access
    size in bytes for memory instructions.
    """

    key: str  # unique name, e.g. "add64_x", "ldxw", "atomic64_fetch_add"
    opcode: int
    kind: Kind
    op: str  # semantic operation: "add", "jgt", "fetch_add", "be", ...
    width: int
    uses: frozenset[str]
    match: tuple[str, int] | None
    signed: bool
    writes_dst: bool
    conf: str  # conformance-syntax mnemonic (canonical spelling)
    kop: str  # kernel-syntax operator or word ("+=", "s>", "be16", ...)
    group: str  # RFC 9669 conformance group
    version: int  # ISA version that introduced it
    # derived once from the above (read on every instruction by the engines)
    cls: Cls = dataclasses.field(init=False, compare=False, repr=False)
    is64: bool = dataclasses.field(init=False, compare=False, repr=False)  # class ALU64 or JMP
    src_reg: bool = dataclasses.field(init=False, compare=False, repr=False)  # src names a register
    slots: int = dataclasses.field(init=False, compare=False, repr=False)  # 2 for lddw, else 1

    def __post_init__(self) -> None:
        cls = Cls(self.opcode & 0x07)
        object.__setattr__(self, "cls", cls)
        object.__setattr__(self, "is64", cls in (Cls.ALU64, Cls.JMP))
        object.__setattr__(self, "src_reg", "src" in self.uses)
        object.__setattr__(self, "slots", 2 if self.kind is Kind.LDDW else 1)


# (name, op field, kernel operator) for ALU operations that have both a K and
# an X form and no special operand shape.
_ALU_OPS = (
    ("add", 0x00, "+="),
    ("sub", 0x10, "-="),
    ("mul", 0x20, "*="),
    ("div", 0x30, "/="),
    ("or", 0x40, "|="),
    ("and", 0x50, "&="),
    ("lsh", 0x60, "<<="),
    ("rsh", 0x70, ">>="),
    ("mod", 0x90, "%="),
    ("xor", 0xA0, "^="),
    ("mov", 0xB0, "="),
    ("arsh", 0xC0, "s>>="),
)
_SIGNED_DIVMOD = (("sdiv", 0x30, "s/="), ("smod", 0x90, "s%="))
OP_NEG = 0x80
OP_END = 0xD0

# (name, op field, kernel operator, version) for conditional jumps.
_JMP_OPS = (
    ("jeq", 0x10, "==", 1),
    ("jgt", 0x20, ">", 1),
    ("jge", 0x30, ">=", 1),
    ("jset", 0x40, "&", 1),
    ("jne", 0x50, "!=", 1),
    ("jsgt", 0x60, "s>", 1),
    ("jsge", 0x70, "s>=", 1),
    ("jlt", 0xA0, "<", 2),
    ("jle", 0xB0, "<=", 2),
    ("jslt", 0xC0, "s<", 2),
    ("jsle", 0xD0, "s<=", 2),
)
OP_JA = 0x00
OP_CALL = 0x80
OP_EXIT = 0x90

# (name, imm without FETCH, kernel operator) for atomic operations.
_ATOMIC_OPS = (("add", 0x00, "+="), ("or", 0x40, "|="), ("and", 0x50, "&="), ("xor", 0xA0, "^="))
ATOMIC_XCHG = 0xE0 | ATOMIC_FETCH
ATOMIC_CMPXCHG = 0xF0 | ATOMIC_FETCH


def _spec(**kw: object) -> OpSpec:
    kw.setdefault("match", None)
    kw.setdefault("signed", False)
    kw["uses"] = frozenset(kw["uses"])  # type: ignore[arg-type]
    return OpSpec(**kw)  # type: ignore[arg-type]


def _alu_specs() -> list[OpSpec]:
    out: list[OpSpec] = []
    for cls, bits, sfx in ((Cls.ALU, 32, "32"), (Cls.ALU64, 64, "")):
        base = "base64" if bits == 64 else "base32"
        muldiv = "divmul64" if bits == 64 else "divmul32"
        for name, field, kop in _ALU_OPS:
            group = muldiv if name in ("mul", "div", "mod") else base
            # div/mod/mov share their opcode with sdiv/smod/movsx: off decides.
            match = ("off", 0) if name in ("div", "mod", "mov") else None
            kind = Kind.MOV if name == "mov" else Kind.ALU
            for src, tag, uses in ((SRC_K, "k", ("dst", "imm")), (SRC_X, "x", ("dst", "src"))):
                out.append(_spec(
                    key=f"{name}{bits}_{tag}", opcode=field | src | cls, kind=kind, op=name,
                    width=bits, uses=uses, match=match if (name != "mov" or src == SRC_X) else None,
                    signed=name == "arsh", writes_dst=True, conf=name + sfx, kop=kop,
                    group=group, version=1))
        for name, field, kop in _SIGNED_DIVMOD:
            for src, tag, uses in ((SRC_K, "k", ("dst", "imm")), (SRC_X, "x", ("dst", "src"))):
                out.append(_spec(
                    key=f"{name}{bits}_{tag}", opcode=field | src | cls, kind=Kind.ALU, op=name,
                    width=bits, uses=uses, match=("off", 1), signed=True, writes_dst=True,
                    conf=name + sfx, kop=kop, group=muldiv, version=4))
        out.append(_spec(
            key=f"neg{bits}", opcode=OP_NEG | SRC_K | cls, kind=Kind.NEG, op="neg", width=bits,
            uses=("dst",), writes_dst=True, conf="neg" + sfx, kop="-", group=base, version=1))
        for ext in (8, 16, 32) if bits == 64 else (8, 16):
            out.append(_spec(
                key=f"movsx{ext}_{bits}", opcode=0xB0 | SRC_X | cls, kind=Kind.MOVSX, op="movsx",
                width=bits, uses=("dst", "src"), match=("off", ext), signed=True, writes_dst=True,
                conf=f"movsx{ext}{bits}", kop=f"(s{ext})", group=base, version=4))
    for size in (16, 32, 64):
        for order, src in (("le", SRC_K), ("be", SRC_X)):
            out.append(_spec(
                key=f"{order}{size}", opcode=OP_END | src | Cls.ALU, kind=Kind.END, op=order,
                width=size, uses=("dst",), match=("imm", size), writes_dst=True,
                conf=f"{order}{size}", kop=f"{order}{size}", group="base32", version=1))
        out.append(_spec(
            key=f"bswap{size}", opcode=OP_END | SRC_K | Cls.ALU64, kind=Kind.END, op="bswap",
            width=size, uses=("dst",), match=("imm", size), writes_dst=True,
            conf=f"bswap{size}", kop=f"bswap{size}", group="base64", version=4))
    return out


def _jmp_specs() -> list[OpSpec]:
    out: list[OpSpec] = []
    for cls, bits, sfx, version in ((Cls.JMP, 64, "", 1), (Cls.JMP32, 32, "32", 3)):
        base = "base64" if bits == 64 else "base32"
        for name, field, kop, ver in _JMP_OPS:
            for src, tag, uses in ((SRC_K, "k", ("dst", "off", "imm")),
                                   (SRC_X, "x", ("dst", "src", "off"))):
                out.append(_spec(
                    key=f"{name}{bits}_{tag}", opcode=field | src | cls, kind=Kind.JCOND,
                    op=name, width=bits, uses=uses, signed=kop.startswith("s"),
                    writes_dst=False, conf=name + sfx, kop=kop, group=base,
                    version=max(ver, version)))
    out.append(_spec(
        key="ja", opcode=OP_JA | Cls.JMP, kind=Kind.JA, op="ja", width=64, uses=("off",),
        writes_dst=False, conf="ja", kop="goto", group="base32", version=1))
    out.append(_spec(
        key="gotol", opcode=OP_JA | Cls.JMP32, kind=Kind.JA, op="ja", width=32, uses=("imm",),
        writes_dst=False, conf="ja32", kop="gotol", group="base32", version=4))
    out.append(_spec(
        key="call", opcode=OP_CALL | Cls.JMP, kind=Kind.CALL, op="call", width=64,
        uses=("imm",), match=("src", CALL_HELPER), writes_dst=False, conf="call", kop="call",
        group="base32", version=1))
    out.append(_spec(
        key="call_local", opcode=OP_CALL | Cls.JMP, kind=Kind.CALL_LOCAL, op="call_local",
        width=64, uses=("imm",), match=("src", CALL_LOCAL), writes_dst=False,
        conf="call local", kop="call", group="base32", version=1))
    out.append(_spec(
        key="callx", opcode=OP_CALL | SRC_X | Cls.JMP, kind=Kind.CALLX, op="callx", width=64,
        uses=("dst",), writes_dst=False, conf="call", kop="callx", group="callx", version=4))
    out.append(_spec(
        key="exit", opcode=OP_EXIT | Cls.JMP, kind=Kind.EXIT, op="exit", width=64, uses=(),
        writes_dst=False, conf="exit", kop="exit", group="base32", version=1))
    return out


def _mem_specs() -> list[OpSpec]:
    out: list[OpSpec] = []
    for pseudo, key in ((PSEUDO_IMM64, "lddw"), (PSEUDO_MAP_FD, "lddw_map"),
                        (PSEUDO_MAP_VALUE, "lddw_map_value")):
        out.append(_spec(
            key=key, opcode=0x18 | Cls.LD, kind=Kind.LDDW, op=key, width=8,
            uses=("dst", "imm"), match=("src", pseudo), writes_dst=True, conf="lddw",
            kop="ll", group="base64", version=1))
    for size, sfx in SIZE_SUFFIX.items():
        sz = SIZE_BITS[size]
        wide = size == 8
        out.append(_spec(
            key=f"ldx{sfx}", opcode=MODE_MEM | sz | Cls.LDX, kind=Kind.LDX, op="ldx",
            width=size, uses=("dst", "src", "off"), writes_dst=True, conf=f"ldx{sfx}",
            kop=SIZE_CTYPE[size], group="base64" if wide else "base32", version=1))
        if not wide:
            out.append(_spec(
                key=f"ldxs{sfx}", opcode=MODE_MEMSX | sz | Cls.LDX, kind=Kind.LDX, op="ldxs",
                width=size, uses=("dst", "src", "off"), signed=True, writes_dst=True,
                conf=f"ldxs{sfx}", kop=f"s{size * 8}", group="base64", version=4))
        out.append(_spec(
            key=f"st{sfx}", opcode=MODE_MEM | sz | Cls.ST, kind=Kind.ST, op="st", width=size,
            uses=("dst", "off", "imm"), writes_dst=False, conf=f"st{sfx}",
            kop=SIZE_CTYPE[size], group="base64" if wide else "base32", version=1))
        out.append(_spec(
            key=f"stx{sfx}", opcode=MODE_MEM | sz | Cls.STX, kind=Kind.STX, op="stx", width=size,
            uses=("dst", "src", "off"), writes_dst=False, conf=f"stx{sfx}",
            kop=SIZE_CTYPE[size], group="base64" if wide else "base32", version=1))
        out.append(_spec(
            key=f"ldabs{sfx}", opcode=MODE_ABS | sz | Cls.LD, kind=Kind.LDABS, op="ldabs",
            width=size, uses=("imm",), writes_dst=False, conf=f"ldabs{sfx}",
            kop=SIZE_CTYPE[size], group="packet", version=1))
        out.append(_spec(
            key=f"ldind{sfx}", opcode=MODE_IND | sz | Cls.LD, kind=Kind.LDIND, op="ldind",
            width=size, uses=("src", "imm"), writes_dst=False, conf=f"ldind{sfx}",
            kop=SIZE_CTYPE[size], group="packet", version=1))
    for size, bits in ((4, 32), (8, 64)):
        opcode = MODE_ATOMIC | SIZE_BITS[size] | Cls.STX
        group = f"atomic{bits}"
        sfx = "32" if bits == 32 else ""
        for name, imm, kop in _ATOMIC_OPS:
            for fetch in (False, True):
                op = f"fetch_{name}" if fetch else name
                out.append(_spec(
                    key=f"atomic{bits}_{op}", opcode=opcode, kind=Kind.ATOMIC, op=op,
                    width=size, uses=("dst", "src", "off"),
                    match=("imm", imm | (ATOMIC_FETCH if fetch else 0)), writes_dst=False,
                    conf=f"lock {'fetch ' if fetch else ''}{name}{sfx}", kop=kop, group=group,
                    version=1 if (name == "add" and not fetch) else 3))
        for name, imm in (("xchg", ATOMIC_XCHG), ("cmpxchg", ATOMIC_CMPXCHG)):
            out.append(_spec(
                key=f"atomic{bits}_{name}", opcode=opcode, kind=Kind.ATOMIC, op=name, width=size,
                uses=("dst", "src", "off"), match=("imm", imm), writes_dst=False,
                conf=f"lock {name}{sfx}", kop=name, group=group, version=3))
    return out


TABLE: tuple[OpSpec, ...] = tuple(_alu_specs() + _jmp_specs() + _mem_specs())
BY_KEY: dict[str, OpSpec] = {s.key: s for s in TABLE}

# opcode byte -> (discriminating field or None, {field value: spec})
_DISPATCH: dict[int, tuple[str | None, dict[int, OpSpec]]] = {}


def _build_dispatch() -> None:
    for spec in TABLE:
        field, value = spec.match if spec.match else (None, 0)
        entry = _DISPATCH.setdefault(spec.opcode, (field, {}))
        assert entry[0] == field, f"conflicting discriminators for {spec.opcode:#x}"
        assert value not in entry[1], f"duplicate spec for {spec.opcode:#x}/{value}"
        entry[1][value] = spec


_build_dispatch()
assert len(BY_KEY) == len(TABLE), "spec keys must be unique"

OPCODES: frozenset[int] = frozenset(_DISPATCH)


def discriminator(opcode: int) -> str | None:
    """The field that tells apart the operations sharing ``opcode`` (or None)."""
    entry = _DISPATCH.get(opcode)
    return entry[0] if entry else None


def lookup(opcode: int, src: int, off: int, imm: int) -> OpSpec | None:
    """The spec for an instruction's fields, or None if no operation matches."""
    entry = _DISPATCH.get(opcode)
    if entry is None:
        return None
    field, specs = entry
    if field is None:
        return specs.get(0)
    return specs.get(src if field == "src" else off if field == "off" else imm)
