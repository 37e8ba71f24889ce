"""Instruction words: encode/decode round trip and every validity rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfvm import isa
from bpfvm.isa.insn import Insn, check, decode, encode, frame_writes, lddw, lddw_value, s32

EXIT = Insn(0x95)


def test_encoding_is_little_endian_struct_bpf_insn() -> None:
    assert Insn(0xB7, 1, 0, 0, 7).encode() == bytes.fromhex("b701000007000000")
    assert Insn(0x7B, 10, 1, -8, 0).encode() == bytes.fromhex("7b1af8ff00000000")


@given(st.integers(0, 255), st.integers(0, 15), st.integers(0, 15),
       st.integers(-(1 << 15), (1 << 15) - 1), st.integers(-(1 << 31), (1 << 31) - 1))
def test_decode_encode_round_trip(op: int, dst: int, src: int, off: int, imm: int) -> None:
    insn = Insn(op, dst, src, off, imm)
    assert decode(encode([insn])) == [insn]


@given(st.integers(0, (1 << 64) - 1))
def test_lddw_value_round_trip(value: int) -> None:
    a, b = lddw(3, value)
    assert lddw_value(a, b) == value


def test_s32() -> None:
    assert s32(0xFFFFFFFF) == -1 and s32(0x7FFFFFFF) == 0x7FFFFFFF and s32(1 << 32) == 0


def test_truncated_bytes() -> None:
    with pytest.raises(Exception, match="pc 1: truncated instruction: 12 bytes"):
        decode(b"\x95" + bytes(11))


def _msgs(insns: list[Insn], helpers: set[int] | None = None) -> list[str]:
    return [str(e) for e in check(insns, helpers)]


@pytest.mark.parametrize("insns,message", [
    ([Insn(0xFF), EXIT], "pc 0: unknown opcode 0xff"),
    ([Insn(0xB7, 11, 0, 0, 1), EXIT], "pc 0: bad register r11 in dst"),
    ([Insn(0xBF, 0, 12), EXIT], "pc 0: bad register r12 in src"),
    ([Insn(0x18, 1, 0, 0, 1)], "pc 0: truncated lddw: missing second slot"),
    ([Insn(0x18, 1, 0, 0, 1), Insn(0xB7), EXIT], "pc 1: malformed lddw"),
    ([Insn(0x05, 0, 0, 5), EXIT], "pc 0: jump out of range: pc 6"),
    ([Insn(0x05, 0, 0, -2), EXIT], "pc 0: jump out of range: pc -1"),
    ([Insn(0x05, 0, 0, 1), *lddw(0, 1), EXIT], "pc 0: jump into the second half of lddw"),
    ([Insn(0xD4, 1, 0, 0, 8), EXIT], "pc 0: bad byte-swap width 8"),
    ([Insn(0xDB, 1, 2, 0, 0x02), EXIT], "pc 0: bad atomic operation 0x2"),
    ([Insn(0x85, 0, 0, 0, 99), EXIT], "pc 0: call to unknown helper 99"),
    ([Insn(0x85, 0, 1, 0, 7), EXIT], "pc 0: local call target out of range"),
    ([Insn(0x85, 0, 3, 0, 1), EXIT], "pc 0: unsupported call kind (src 3)"),
    ([Insn(0xBF, 1, 2, 4), EXIT], "pc 0: bad sign-extension width 4"),
    ([Insn(0x07, 1, 2, 0, 1), EXIT], "pc 0: add64_k: src field must be 0, not 2"),
    ([Insn(0x95, 0, 0, 0, 1)], "pc 0: exit: imm field must be 0, not 1"),
    ([], "pc 0: empty program"),
])
def test_malformed_bytecode(insns: list[Insn], message: str) -> None:
    msgs = _msgs(insns, helpers={1, 2, 3})
    assert any(m.startswith(message) for m in msgs), msgs


def test_every_problem_is_reported_in_pc_order() -> None:
    msgs = _msgs([Insn(0xFF), Insn(0xB7, 11), Insn(0x05, 0, 0, 9), EXIT])
    assert [m.split(":")[0] for m in msgs] == ["pc 0", "pc 1", "pc 2"]


def test_instruction_limit() -> None:
    assert _msgs([EXIT] * 11, None) == []
    assert check([EXIT] * 11, max_insns=10)[0].message == "too many instructions: 11 > 10"


def _valid_insn(spec: isa.OpSpec) -> list[Insn]:
    fields = {"dst": 1, "src": 2, "off": 0, "imm": 0}
    if spec.match:
        fields[spec.match[0]] = spec.match[1]
    if spec.kind is isa.Kind.CALL:
        fields["imm"] = 1  # a known helper
    kept = {k: (v if k in spec.uses or (spec.match and spec.match[0] == k) else 0)
            for k, v in fields.items()}
    first = Insn(spec.opcode, kept["dst"], kept["src"], kept["off"], kept["imm"])
    return [first, Insn(0)] if spec.kind is isa.Kind.LDDW else [first]


@pytest.mark.parametrize("spec", isa.TABLE, ids=lambda s: s.key)
def test_every_opcode_has_a_valid_form(spec: isa.OpSpec) -> None:
    insns = _valid_insn(spec) + [EXIT]
    assert insns[0].spec is spec
    assert _msgs(insns, {1}) == []


def test_writes_to_r10_are_valid_bytecode_and_listed() -> None:
    insns = [Insn(0xB7, 10, 0, 0, 1), *lddw(10, 7), Insn(0xDB, 1, 10, 0, 0xE1),
             Insn(0xC3, 1, 10, 0, 0x01), Insn(0xC3, 1, 10, 0, 0x00), Insn(0xBF, 1, 10), EXIT]
    assert check(insns) == []
    got = frame_writes(insns)
    assert got[0] == "r10 is read-only"
    assert got[1] == "r10 is read-only"
    assert got[3].startswith("r10 is read-only (xchg writes")
    assert got[4].startswith("r10 is read-only (fetch_add writes")
    assert sorted(got) == [0, 1, 3, 4]  # a plain add and a read of r10 write nothing
