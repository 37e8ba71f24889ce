"""Basic-block structure and the shared IR primitives."""

from __future__ import annotations

from bpfvm import isa
from bpfvm.isa.insn import Insn, lddw
from bpfvm.jit.engine import make_layout
from bpfvm.jit.ir import Lowering, leaders, target, walk
from bpfvm.program import Program
from bpfvm.stdhelpers import standard_helpers

EXIT = Insn(0x95)


def test_walk_skips_the_second_slot_of_lddw() -> None:
    code = [*lddw(1, 5), Insn(0xB7, 0), EXIT]
    assert [pc for pc, _, _ in walk(code)] == [0, 2, 3]


def test_targets_of_jumps_gotol_and_local_calls() -> None:
    ja, gotol = Insn(0x05, off=3), Insn(0x06, imm=-2)
    call = Insn(0x85, src=isa.CALL_LOCAL, imm=4)
    assert [target(10, i, i.spec) for i in (ja, gotol, call)] == [14, 9, 15]


def test_leaders() -> None:
    code = [Insn(0xB7, 0), Insn(0x15, 0, 0, 2, 0), Insn(0xB7, 0, imm=1), EXIT,
            Insn(0x85, src=isa.CALL_LOCAL, imm=-5), EXIT]
    # 0 entry, 2 fall-through of the jump, 4 its target and after the exit at 3,
    # 0 call target, 5 after the call, 6 = running off the end
    assert leaders(code) == {0, 2, 4, 5, 6}


def test_frames_only_when_needed() -> None:
    layout = make_layout([], standard_helpers(), False)
    plain = Lowering(Program([EXIT]), layout)
    calls = Lowering(Program([Insn(0x85, src=isa.CALL_LOCAL, imm=0), EXIT, EXIT]), layout)
    checked = Lowering(Program([EXIT]), make_layout([], standard_helpers(), True))
    assert (plain.frames, calls.frames, checked.frames) == (1, 8, 8)
    assert checked.stride == 2 * plain.stride


def test_registers_live_in_ssa_values_within_a_block() -> None:
    lw = Lowering(Program([EXIT]), make_layout([], standard_helpers(), False))
    lw.b.position_at_end(lw.blocks[0])
    first = lw.get(3)
    assert lw.get(3) is first
    doubled = lw.b.add(first, first)
    lw.set(3, doubled)
    last = lw.b.add(doubled, doubled)
    lw.set(3, last)
    assert lw.get(3) is not first
    stores = lambda: [i for i in lw.blocks[0].instructions if i.opname == "store"]  # noqa: E731
    assert stores() == []
    lw.jump(1)  # branching away saves the last value only
    assert len(stores()) == 1 and stores()[0].operands[0] is last
    lw.b.position_at_end(lw.blocks[1])
    assert lw.get(3) is not first
