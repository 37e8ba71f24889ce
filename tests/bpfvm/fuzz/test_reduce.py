"""Delta debugging over instructions: jumps stay consistent, the predicate stays true."""

from __future__ import annotations

from bpfvm.fuzz.builder import Builder, ins
from bpfvm.fuzz.generate import generate
from bpfvm.fuzz.reduce import reduce, units, without
from bpfvm.isa.insn import Insn, check, lddw
from bpfvm.program import Program

MOV = ins("mov64_k", 1, imm=7)
EXIT = ins("exit")


def test_units_keep_lddw_together() -> None:
    insns = [*lddw(1, 5), MOV, EXIT]
    assert [len(u) for u in units(insns)] == [2, 1, 1]


def test_removed_target_lands_on_next_survivor() -> None:
    insns = [ins("jeq64_k", 1, off=2), MOV, ins("mov64_k", 2, imm=1), EXIT]
    out = without(insns, {2})
    assert out == [ins("jeq64_k", 1, off=1), MOV, EXIT]
    out = without(insns, {1})
    assert out == [ins("jeq64_k", 1, off=1), ins("mov64_k", 2, imm=1), EXIT]


def test_offsets_count_slots_across_lddw() -> None:
    insns = [ins("ja", off=4), MOV, *lddw(2, 1 << 40), MOV, EXIT]
    out = without(insns, {1})
    assert out is not None and out[0].off == 3 and check(out) == []


def test_backward_jumps_and_local_calls_are_retargeted() -> None:
    b = Builder()
    fn, head = b.new_label(), b.new_label()
    b.emit("mov64_k", 0, imm=0)
    b.place(head)
    b.emit("add64_k", 0, imm=1)
    b.emit("mov64_k", 3, imm=3)
    b.jump("jlt64_k", head, 0, imm=9)
    b.jump("call_local", fn)
    b.emit("exit")
    b.place(fn)
    b.emit("mov64_k", 4, imm=4)
    b.emit("mov64_k", 0, imm=1)
    b.emit("exit")
    insns = b.finish()
    out = without(insns, {2, 6})
    assert out is not None and check(out) == []
    assert out[2].off == -2 and out[3].imm == 1


def test_jump_with_nowhere_to_land_is_refused() -> None:
    insns = [ins("ja", off=1), MOV, EXIT]
    assert without(insns, {1, 2}) is None
    assert without(insns, {0, 1, 2}) is None


def _has(program: Program, *needles: Insn) -> bool:
    return check(program.insns) == [] and all(n in program.insns for n in needles)


def test_reduce_finds_the_minimal_core() -> None:
    case = generate(7, size=10)
    needle = ins("mov64_k", 9, imm=12345)
    insns = list(case.program.insns)
    insns.insert(len(insns) // 2, needle)
    start = Program(insns, case.program.maps, case.program.hook)
    assert check(start.insns) == []
    small = reduce(start, lambda p: _has(p, needle, EXIT))
    assert sorted(small.insns) == sorted([needle, EXIT])


def test_reduce_keeps_the_predicate_and_its_budget() -> None:
    case = generate(3, size=8)
    calls = []

    def interesting(p: Program) -> bool:
        calls.append(p)
        return _has(p, EXIT) and len(p.insns) % 2 == len(case.program.insns) % 2

    small = reduce(case.program, interesting, max_tests=25)
    assert len(calls) <= 25
    assert interesting(small) and len(small.insns) <= len(case.program.insns)


def test_simplify_lowers_immediates() -> None:
    prog = Program([ins("mov64_k", 0, imm=999), ins("add64_k", 0, imm=77), EXIT])
    small = reduce(prog, lambda p: len(p.insns) == 3 and check(p.insns) == [])
    assert [i.imm for i in small.insns[:2]] == [0, 0]


def test_unused_maps_are_dropped_and_references_renumbered() -> None:
    from bpfvm.fuzz.reduce import without_unused_maps
    from bpfvm.program import MapDef

    maps = [MapDef("a", "array", 4, 8, 1), MapDef("b", "hash", 4, 8, 4)]
    prog = Program([*lddw(1, 1, src=1), EXIT], maps)
    out = without_unused_maps(prog)
    assert [m.name for m in out.maps] == ["b"] and out.insns[0].imm == 0
    assert without_unused_maps(out) is out
    small = reduce(Program([ins("mov64_k", 0, imm=0), EXIT], maps), lambda p: EXIT in p.insns)
    assert small.maps == []
