"""The JIT's arithmetic against bpfvm.isa.semantics: every ALU, jump, byte-swap and atomic spec.

Each test compiles one program holding every operation of a group, run on
operands drawn by hypothesis (plus the edge values that break naive
lowerings: 0, -1, INT_MIN, shift amounts past the width), and compares each
stored result with the shared semantic functions.
"""

from __future__ import annotations

import struct
from functools import cache

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bpfvm import isa
from bpfvm.isa import bits as width
from bpfvm.isa import semantics
from bpfvm.isa.insn import Insn
from bpfvm.jit.engine import Jit
from bpfvm.program import Program
from bpfvm.stdhelpers import standard_helpers

M64 = width.M64
EXIT = Insn(0x95)
EDGES = [0, 1, 2, 31, 32, 33, 63, 64, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 63,
         M64, M64 - 1, 0x8000000000000001, 0x100000000]
IMMS = [0, 1, -1, 3, 31, 32, 63, 64, -2147483648, 2147483647, -7, 0x10000]
u64 = st.one_of(st.sampled_from(EDGES), st.integers(0, M64))

ALU_KINDS = (isa.Kind.ALU, isa.Kind.MOV, isa.Kind.NEG, isa.Kind.MOVSX, isa.Kind.END)
ALU_X = [s for s in isa.TABLE if s.kind in ALU_KINDS and s.src_reg]
ALU_K = [s for s in isa.TABLE if s.kind in ALU_KINDS and not s.src_reg]
JUMPS = [s for s in isa.TABLE if s.kind is isa.Kind.JCOND]
ATOMICS = [s for s in isa.TABLE if s.kind is isa.Kind.ATOMIC]


def insn_of(spec: isa.OpSpec, dst: int, src: int = 0, off: int = 0, imm: int = 0) -> Insn:
    """An instruction of ``spec`` with the discriminating field set from the spec."""
    fields = {name: value if name in spec.uses else 0
              for name, value in (("dst", dst), ("src", src), ("off", off), ("imm", imm))}
    if spec.match:
        fields[spec.match[0]] = spec.match[1]
    return Insn(spec.opcode, **fields)


def run(program: Program, mem: bytearray) -> bytearray:
    Jit(program, standard_helpers()).run(mem)
    return mem


@cache
def alu_program(imm: int | None) -> Program:
    """dst = mem[0]; OP dst, mem[8] (or imm); mem[16 + 8k] = dst, for every spec k."""
    specs = ALU_X if imm is None else ALU_K
    code: list[Insn] = []
    for k, spec in enumerate(specs):
        code += [Insn(0x79, 3, 1, 0), Insn(0x79, 4, 1, 8),
                 insn_of(spec, 3, 4, imm=0 if imm is None else imm),
                 Insn(0x7B, 1, 3, 16 + 8 * k)]
    return Program(code + [Insn(0xB7, 0, imm=0), EXIT])


def expected_alu(spec: isa.OpSpec, a: int, b: int) -> int:
    return semantics.ALU[spec.key](a, b)


@settings(max_examples=60, deadline=None)
@given(a=u64, b=u64)
@example(a=1 << 63, b=M64).via("INT_MIN / -1")
@example(a=5, b=0).via("division by zero")
def test_every_register_form(a: int, b: int) -> None:
    mem = run(alu_program(None), bytearray(struct.pack("<QQ", a, b)) + bytes(8 * len(ALU_X)))
    for k, spec in enumerate(ALU_X):
        got = struct.unpack_from("<Q", mem, 16 + 8 * k)[0]
        assert got == expected_alu(spec, a, b), spec.key


@pytest.mark.parametrize("imm", IMMS)
@settings(max_examples=25, deadline=None)
@given(a=u64)
def test_every_immediate_form(imm: int, a: int) -> None:
    mem = run(alu_program(imm), bytearray(struct.pack("<QQ", a, 0)) + bytes(8 * len(ALU_K)))
    for k, spec in enumerate(ALU_K):
        got = struct.unpack_from("<Q", mem, 16 + 8 * k)[0]
        assert got == expected_alu(spec, a, semantics.operand(imm)), (spec.key, imm)


@cache
def jump_program() -> Program:
    """mem[16 + k] = 1 if jump k is taken on (mem[0], mem[8]), else 0."""
    code: list[Insn] = [Insn(0x79, 3, 1, 0), Insn(0x79, 4, 1, 8)]
    for k, spec in enumerate(JUMPS):
        code += [Insn(0x72, 1, 0, 16 + k, 1), insn_of(spec, 3, 4, off=1, imm=0),
                 Insn(0x72, 1, 0, 16 + k, 0)] if spec.src_reg else []
    return Program(code + [Insn(0xB7, 0, imm=0), EXIT])


@settings(max_examples=60, deadline=None)
@given(a=u64, b=u64)
@example(a=0xFFFFFFFF, b=0x1FFFFFFFF)
@example(a=1 << 63, b=1)
def test_every_jump_condition(a: int, b: int) -> None:
    specs = [s for s in JUMPS if s.src_reg]
    mem = run(jump_program(), bytearray(struct.pack("<QQ", a, b)) + bytes(len(JUMPS)))
    for spec in specs:
        taken = mem[16 + JUMPS.index(spec)] == 1
        assert taken == semantics.JUMP[spec.key](a, b), spec.key


@pytest.mark.parametrize("imm", [0, -1, 1, 0x7FFFFFFF, -2147483648])
def test_immediate_jumps_compare_the_sign_extended_immediate(imm: int) -> None:
    specs = [s for s in JUMPS if not s.src_reg]
    code: list[Insn] = [Insn(0x79, 3, 1, 0)]
    for k, spec in enumerate(specs):
        code += [Insn(0x72, 1, 0, 8 + k, 1), insn_of(spec, 3, off=1, imm=imm),
                 Insn(0x72, 1, 0, 8 + k, 0)]
    program = Program(code + [Insn(0xB7, 0, imm=0), EXIT])
    jit = Jit(program, standard_helpers())
    for a in EDGES:
        mem = bytearray(struct.pack("<Q", a)) + bytes(len(specs))
        jit.run(mem)
        for k, spec in enumerate(specs):
            assert (mem[8 + k] == 1) == semantics.JUMP[spec.key](a, semantics.operand(imm)), \
                (spec.key, a, imm)


@cache
def atomic_program(spec: isa.OpSpec) -> Program:
    """mem[0] OP= src (r0 = mem[16] for cmpxchg); then store src and r0 after it."""
    return Program([Insn(0x79, 2, 1, 8), Insn(0x79, 0, 1, 16), insn_of(spec, 1, 2),
                    Insn(0x7B, 1, 2, 24), Insn(0x7B, 1, 0, 32), Insn(0xB7, 0, imm=0), EXIT])


@pytest.mark.parametrize("spec", ATOMICS, ids=[s.key for s in ATOMICS])
@settings(max_examples=15, deadline=None)
@given(old=u64, src=u64, r0=u64)
def test_every_atomic(spec: isa.OpSpec, old: int, src: int, r0: int) -> None:
    bits = spec.width * 8
    if spec.op == "cmpxchg" and old & 1:
        r0 = old  # make the exchange happen about half the time
    mem = bytearray(struct.pack("<QQQQQ", old, src, r0, 0, 0))
    run(atomic_program(spec), mem)
    got_mem, got_src, got_r0 = struct.unpack_from("<Q", mem, 0)[0], *struct.unpack_from(
        "<QQ", mem, 24)
    mask = width.mask(bits)
    high = old & ~mask & M64  # a 32-bit atomic leaves the upper half of the word alone
    if spec.op == "cmpxchg":
        assert got_mem == high | semantics.cmpxchg(old & mask, r0, src, bits)
        assert (got_src, got_r0) == (src, old & mask)
        return
    assert got_mem == high | semantics.ATOMIC[spec.key](old & mask, src)
    assert got_src == ((old & mask) if semantics.fetches(spec) else src)
    assert got_r0 == r0
