"""Tests of bpfvm.asm.disasm: round trips through both syntaxes for every opcode of
the ISA table (hypothesis), labels, helper and map names, lint warnings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfvm import isa
from bpfvm.asm.assembler import assemble
from bpfvm.asm.disasm import disassemble, format_insn, lint
from bpfvm.asm.names import is_fetch
from bpfvm.helpers import Arg, HelperSpec, HelperTable, Ret
from bpfvm.isa.insn import Insn, decode, encode
from bpfvm.program import MapDef, Program

HELPERS = HelperTable([
    HelperSpec(1, "map_lookup_elem", (Arg.MAP, Arg.MAP_KEY), Ret.MAP_VALUE_OR_NULL),
    HelperSpec(6, "trace_printk", (Arg.MEM, Arg.SIZE), Ret.SCALAR),
])
MAPS = [MapDef("counts", "array", 4, 8, 16), MapDef("seen", "hash", 8, 4, 64)]
SYNTAXES = ("kernel", "conformance")
S16 = st.integers(-(1 << 15), (1 << 15) - 1)
S32 = st.integers(-(1 << 31), (1 << 31) - 1)


@st.composite
def valid_insn(draw: st.DrawFn, spec: isa.OpSpec | None = None) -> list[Insn]:
    """The slots of one instruction of ``spec`` (drawn if None), valid fields."""
    spec = spec or draw(st.sampled_from(isa.TABLE))
    fields = {"dst": 0, "src": 0, "off": 0, "imm": 0}
    writes_src = is_fetch(spec) and spec.op != "cmpxchg"
    if "dst" in spec.uses:
        fields["dst"] = draw(st.integers(0, 9 if spec.writes_dst else 10))
    if "src" in spec.uses:
        fields["src"] = draw(st.integers(0, 9 if writes_src else 10))
    if "off" in spec.uses:
        fields["off"] = draw(S16)
    if "imm" in spec.uses:
        fields["imm"] = draw(S32)
    if spec.match:
        fields[spec.match[0]] = spec.match[1]
    first = Insn(spec.opcode, **fields)
    if spec.kind is isa.Kind.LDDW:
        return [first, Insn(0, 0, 0, 0, draw(S32))]
    return [first]


def _round_trip(prog: Program, syntax: str, labels: bool = True) -> Program:
    text = disassemble(prog, syntax, HELPERS, labels=labels)
    back = assemble(text, helpers=HELPERS)
    assert back.bytecode() == prog.bytecode(), text
    assert back.maps == prog.maps and back.hook == prog.hook, text
    return back


@pytest.mark.parametrize("spec", isa.TABLE, ids=lambda s: s.key)
@pytest.mark.parametrize("syntax", SYNTAXES)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_every_opcode_round_trips(spec: isa.OpSpec, syntax: str, data: st.DataObject) -> None:
    insns = data.draw(valid_insn(spec))
    prog = Program(insns, list(MAPS), "placement")
    assert lint(insns) == []
    assert decode(encode(insns)) == insns
    _round_trip(prog, syntax, labels=data.draw(st.booleans()))


@st.composite
def branchy_program(draw: st.DrawFn) -> list[Insn]:
    """Valid instructions whose jumps and local calls land on instructions."""
    pieces = draw(st.lists(valid_insn(), min_size=1, max_size=12))
    starts, pc = [], 0
    for piece in pieces:
        starts.append(pc)
        pc += len(piece)
    starts.append(pc)
    out: list[Insn] = []
    for here, piece in zip(starts, pieces, strict=False):
        first = piece[0]
        spec = first.spec
        assert spec is not None
        rel = draw(st.sampled_from(starts)) - here - 1
        if spec.kind is isa.Kind.JCOND or (spec.kind is isa.Kind.JA and "off" in spec.uses):
            first = first._replace(off=rel)
        elif spec.kind in (isa.Kind.JA, isa.Kind.CALL_LOCAL):
            first = first._replace(imm=rel)
        out += [first, *piece[1:]]
    return out


@pytest.mark.parametrize("syntax", SYNTAXES)
@settings(max_examples=150, deadline=None)
@given(insns=branchy_program(), labels=st.booleans())
def test_programs_round_trip_with_labels(syntax: str, insns: list[Insn], labels: bool) -> None:
    _round_trip(Program(insns, list(MAPS)), syntax, labels)


@pytest.mark.parametrize("syntax", SYNTAXES)
@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.tuples(st.sampled_from(sorted(isa.OPCODES) + [0, 0xFF]),
                                st.integers(0, 255), st.integers(-4, 4), S32),
                      min_size=1, max_size=8))
def test_any_bytes_round_trip(syntax: str, words: list[tuple[int, int, int, int]]) -> None:
    """Even malformed bytecode comes back bit-identical (as .raw where needed)."""
    insns = [Insn(op, regs & 0x0F, regs >> 4, off, imm) for op, regs, off, imm in words]
    assert decode(encode(insns)) == insns
    _round_trip(Program(insns), syntax)


def test_kernel_listing() -> None:
    prog = assemble(".hook placement\n.map counts array key=4 value=8 entries=16\n"
                    "r1 = map[counts] ll\ncall 1\nif r0 == 0 goto out\n"
                    "lock *(u64 *)(r0 + 0) += r1\nout: r0 = 0\nexit\n", helpers=HELPERS)
    assert disassemble(prog, helpers=HELPERS) == (
        ".syntax kernel\n.hook placement\n.map counts array key=4 value=8 entries=16\n"
        "    r1 = map[counts] ll\n    call map_lookup_elem\n    if r0 == 0 goto L5\n"
        "    lock *(u64 *)(r0 + 0) += r1\nL5:\n    r0 = 0\n    exit\n")
    assert "call 1" in disassemble(prog)  # without a helper table: the id
    assert "if r0 == 0 goto +1" in disassemble(prog, labels=False)


def test_conformance_listing() -> None:
    prog = assemble("mov %r1, 0x12345\ncall local f\nexit\nf:\nldxh %r0, [%r1-2]\n"
                    "lock fetch xor32 [%r10-4], %r0\njne32 %r0, -1, exit\nexit\n")
    assert disassemble(prog, "conformance") == (
        ".syntax conformance\n    mov %r1, 0x12345\n    call local fn3\nL2:\n    exit\n"
        "fn3:\n    ldxh %r0, [%r1-2]\n    lock fetch xor32 [%r10-4], %r0\n"
        "    jne32 %r0, -1, L2\n    exit\n")


@pytest.mark.parametrize("insns,warning", [
    ([Insn(0xB7, 1, 3, 0, 5)], "pc 0: mov64_k: src field is 3, unused by this opcode"),
    ([Insn(0x61, 0, 1, 4, 9)], "pc 0: ldxw: imm field is 9, unused by this opcode"),
    ([Insn(0x95, 0, 0, 0, 1)], "pc 0: exit: imm field is 1, unused by this opcode"),
    ([Insn(0x0F, 1, 12, 0, 0)], "pc 0: add64_x: no register r12 in src"),
    ([Insn(0x8F)], "pc 0: unknown operation (opcode 0x8f)"),
    ([Insn(0x18, 1, 0, 0, 1)], "pc 0: truncated lddw: no second slot"),
    ([Insn(0x18, 1, 0, 0, 1), Insn(0x95)], "pc 0: malformed lddw"),
])
def test_lint_warns_and_raw_keeps_the_bits(insns: list[Insn], warning: str) -> None:
    (first, *_) = lint(insns)
    assert first.startswith(warning)
    for syntax in SYNTAXES:
        text = disassemble(insns, syntax)
        assert ".raw 0x" in text and warning.split(": ", 1)[1] in text
        assert assemble(text).insns == insns


def test_format_insn_for_diagnostics() -> None:
    insns = [Insn(0x15, 1, 0, 2, 0), *[Insn(0x18, 2, 1, 0, 1), Insn(0)], Insn(0x95)]
    assert format_insn(insns, 0) == "if r1 == 0 goto +2"
    assert format_insn(insns, 0, "conformance") == "jeq %r1, 0, +2"
    assert format_insn(insns, 1, maps=MAPS) == "r2 = map[seen] ll"
    assert format_insn(insns, 1) == "r2 = map[1] ll"
    assert format_insn(insns, 3) == "exit"


def test_unknown_syntax_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown syntax 'att'"):
        disassemble([Insn(0x95)], "att")


def test_writes_to_r10_are_instructions() -> None:
    """A write to r10 is a valid encoding (the verifier rejects it where it
    may run): it assembles, prints as itself and assembles back."""
    insns = [Insn(0xB7, 10, 0, 0, 0), Insn(0x07, 10, 0, 0, 1), Insn(0x79, 10, 1, 0, 0),
             Insn(0xDB, 1, 10, 0, 1), Insn(0x95)]
    assert lint(insns) == []
    for syntax in SYNTAXES:
        text = disassemble(insns, syntax)
        assert ".raw" not in text
        assert assemble(text).insns == insns
    assert assemble("r10 = 0\nexit\n").insns == insns[:1] + insns[-1:]
