"""Instruction words: decode, encode and validity check.

An :class:`Insn` is one 8-byte slot, as the kernel's ``struct bpf_insn``:
opcode, dst, src, off (signed 16), imm (signed 32).  A ``lddw`` takes two
slots; the second has opcode 0 and carries the upper 32 bits in ``imm``.
This is the only module that touches instruction bits.  :func:`check`
applies the per-opcode validity rules read from :mod:`bpfvm.isa` and reports
every problem as ``pc N: message``.
"""

from __future__ import annotations

import struct
from collections.abc import Container, Iterable, Sequence
from typing import NamedTuple

from bpfvm import isa
from bpfvm.errors import BytecodeError, BytecodeErrors
from bpfvm.isa.bits import s32

DEFAULT_MAX_INSNS = 1_000_000
_WORD = struct.Struct("<BBhi")


class Insn(NamedTuple):
    """One instruction slot."""

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    @property
    def spec(self) -> isa.OpSpec | None:
        return isa.lookup(self.opcode, self.src, self.off, self.imm)

    def encode(self) -> bytes:
        return _WORD.pack(self.opcode, (self.src << 4) | self.dst, self.off, self.imm)


def lddw(dst: int, value: int, src: int = isa.PSEUDO_IMM64) -> tuple[Insn, Insn]:
    """The two slots of ``lddw dst, value`` (value taken modulo 2**64)."""
    value &= (1 << 64) - 1
    return (Insn(0x18, dst, src, 0, s32(value)), Insn(0, 0, 0, 0, s32(value >> 32)))


def lddw_value(first: Insn, second: Insn) -> int:
    """The unsigned 64-bit immediate of a ``lddw`` from its two slots."""
    return (first.imm & 0xFFFFFFFF) | ((second.imm & 0xFFFFFFFF) << 32)


MAP_VALUE_OFFSET_MAX = 0xFFFFFFFF  # the offset of a map-value lddw is an unsigned 32-bit number


def map_value_offset(first: Insn, second: Insn) -> int:
    """The byte offset into the map value that a ``lddw`` with the map-value
    pseudo source addresses: the upper half of its immediate, unsigned (as
    the kernel's ``u32 off``), so 0..4294967295 and never negative.  The
    verifier, the engines, the disassembler and the assembler all use this
    reading."""
    return lddw_value(first, second) >> 32


def decode(data: bytes | bytearray | memoryview) -> list[Insn]:
    """Split bytecode into slots.  Raises :class:`BytecodeError` when the
    length is not a multiple of 8."""
    if len(data) % 8:
        raise BytecodeError(len(data) // 8, f"truncated instruction: {len(data)} bytes "
                            "is not a multiple of 8")
    out = []
    for opcode, regs, off, imm in _WORD.iter_unpack(bytes(data)):
        out.append(Insn(opcode, regs & 0x0F, regs >> 4, off, imm))
    return out


def encode(insns: Iterable[Insn]) -> bytes:
    return b"".join(i.encode() for i in insns)


_FIELDS = ("dst", "src", "off", "imm")


def _rules(spec: isa.OpSpec) -> tuple[bool, bool, bool, bool, bool, bool, bool, int | None]:
    """Per operation: whether dst, src, off and imm must be 0; whether src
    is a register; whether the register in src (fetching atomics) or dst is
    written (see :func:`frame_writes`); and the index into an :class:`Insn`
    of the field holding a jump or call distance (None: not a jump)."""
    matched = spec.match[0] if spec.match else None
    zero = [f not in spec.uses and f != matched for f in _FIELDS]
    atomic_ro = spec.kind is isa.Kind.ATOMIC and (spec.op.startswith("fetch_")
                                                  or spec.op == "xchg")
    field = _jump_field(spec)
    jump = None if field is None else 1 + _FIELDS.index(field)
    return (*zero, spec.src_reg, atomic_ro, spec.writes_dst, jump)  # type: ignore[return-value]


def _field_problem(insn: Insn, spec: isa.OpSpec) -> str | None:
    """The first operand rule ``insn`` breaks, or None."""
    if insn.dst > isa.FRAME_REG:
        return f"bad register r{insn.dst} in dst"
    if spec.src_reg and insn.src > isa.FRAME_REG:
        return f"bad register r{insn.src} in src"
    matched = spec.match[0] if spec.match else None
    for field in ("dst", "src", "off", "imm"):
        if field in spec.uses or field == matched:
            continue
        if getattr(insn, field):
            return f"{spec.key}: {field} field must be 0, not {getattr(insn, field)}"
    return None


def _unknown(insn: Insn) -> str:
    """Why no spec matches an instruction whose opcode may be known."""
    field = isa.discriminator(insn.opcode)
    if insn.opcode not in isa.OPCODES or field is None:
        return f"unknown opcode {insn.opcode:#04x}"
    value = getattr(insn, field)
    cls = insn.opcode & 0x07
    if insn.opcode & 0xF0 == isa.OP_END and cls in (isa.Cls.ALU, isa.Cls.ALU64):
        return f"bad byte-swap width {value} (must be 16, 32 or 64)"
    if insn.opcode & 0xE0 == isa.MODE_ATOMIC:
        return f"bad atomic operation {value:#x}"
    if insn.opcode == 0x18:
        return f"bad lddw source {value}"
    if insn.opcode == isa.OP_CALL | isa.Cls.JMP:
        return f"unsupported call kind (src {value})"
    if field == "off" and insn.opcode & 0xF0 == 0xB0:
        return f"bad sign-extension width {value} in movsx"
    return f"bad {field} value {value} for opcode {insn.opcode:#04x}"


def _jump_field(spec: isa.OpSpec) -> str | None:
    """The field holding a jump or local-call distance ("off" or "imm"), or None."""
    if spec.kind is isa.Kind.JCOND or (spec.kind is isa.Kind.JA and spec.cls == isa.Cls.JMP):
        return "off"
    if spec.kind is isa.Kind.JA or spec.kind is isa.Kind.CALL_LOCAL:
        return "imm"
    return None


def check(insns: Sequence[Insn], helpers: Container[int] | None = None,
          max_insns: int = DEFAULT_MAX_INSNS) -> list[BytecodeError]:
    """Every validity problem of a program, in pc order (empty when valid).

    ``helpers`` is the set of known helper ids; None skips that check.
    """
    errors: list[BytecodeError] = []
    n = len(insns)
    if n == 0:
        return [BytecodeError(0, "empty program")]
    if n > max_insns:
        return [BytecodeError(max_insns, f"too many instructions: {n} > {max_insns}")]
    second_half: set[int] = set()
    jumps: list[tuple[int, int, str]] = []
    pc = 0
    lddw, call, call_local, frame = isa.Kind.LDDW, isa.Kind.CALL, isa.Kind.CALL_LOCAL, \
        isa.FRAME_REG
    lookup, rules = isa.lookup, _RULES
    while pc < n:
        insn = insns[pc]
        _, dst, src, off, imm = insn
        spec = lookup(insn[0], src, off, imm)
        if spec is None:
            errors.append(BytecodeError(pc, _unknown(insn)))
            pc += 1
            continue
        zdst, zsrc, zoff, zimm, src_reg, _atomic_ro, _writes_dst, jump = rules[spec.key]
        if dst > frame or src > frame and src_reg \
                or (zdst and dst) or (zsrc and src) or (zoff and off) or (zimm and imm):
            problem = _field_problem(insn, spec)
            if problem:
                errors.append(BytecodeError(pc, problem))
        kind = spec.kind
        if kind is lddw:
            if pc + 1 >= n:
                errors.append(BytecodeError(pc, "truncated lddw: missing second slot"))
            else:
                nxt = insns[pc + 1]
                if nxt.opcode or nxt.dst or nxt.src or nxt.off:
                    errors.append(BytecodeError(pc + 1, "malformed lddw: second slot must "
                                                "have only imm set"))
                second_half.add(pc + 1)
            pc += 2
            continue
        if kind is call and helpers is not None and imm not in helpers:
            errors.append(BytecodeError(pc, f"call to unknown helper {imm}"))
        if jump is not None:
            jumps.append((pc, pc + 1 + insn[jump],
                          "local call target" if kind is call_local else "jump"))
        pc += 1
    for pc, target, what in jumps:
        if not 0 <= target < n:
            errors.append(BytecodeError(pc, f"{what} out of range: pc {target} "
                                        f"(program has {n} slots)"))
        elif target in second_half:
            errors.append(BytecodeError(pc, f"{what} into the second half of lddw at "
                                        f"pc {target - 1}"))
    errors.sort(key=lambda e: e.pc)
    return errors


_RULES = {spec.key: _rules(spec) for spec in isa.TABLE}


def frame_writes(insns: Sequence[Insn]) -> dict[int, str]:
    """The slots whose instruction writes r10, each with the message a
    verifier gives where it may run.  Valid bytecode (the kernel's own
    selftests mark code they prove dead with one): the engines run r10 as
    an ordinary register, and only a verifier rejects the reachable ones."""
    out: dict[int, str] = {}
    frame, lookup = isa.FRAME_REG, isa.lookup
    for pc, insn in enumerate(insns):
        opcode, dst, src, off, imm = insn
        # only ALU, load and atomic classes write a register: look those up
        if (dst == frame and opcode & 0x07 in (0, 1, 4, 7)) or (
                src == frame and opcode & 0xE7 == 0xC3):
            spec = lookup(opcode, src, off, imm)
            if spec is None or (pc and insns[pc - 1][0] == 0x18):
                continue  # invalid, or possibly the second slot of a lddw: check() says
            _, _, _, _, _, atomic_ro, writes_dst, _ = _RULES[spec.key]
            if writes_dst and dst == frame:
                out[pc] = "r10 is read-only"
            elif atomic_ro and src == frame:
                out[pc] = f"r10 is read-only ({spec.op} writes the old value to src)"
    return out


def validate(insns: Sequence[Insn], helpers: Container[int] | None = None,
             max_insns: int = DEFAULT_MAX_INSNS) -> None:
    """Raise :class:`BytecodeErrors` listing every problem, if any."""
    errors = check(insns, helpers, max_insns)
    if errors:
        raise BytecodeErrors(errors)
