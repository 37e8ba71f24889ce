"""The fuzzer's program generator: valid bytecode, deterministic, covers every snippet."""

from __future__ import annotations

import pytest

from bpfvm import isa
from bpfvm.fuzz.builder import Builder, Target, ins, target_named, targets
from bpfvm.fuzz.generate import generate
from bpfvm.isa.insn import check
from mmcore.hooks.specs import HOOKS

HELPER_IDS = {1, 2, 3, 5, 6, 7}
SEEDS = range(600)


@pytest.fixture(scope="module")
def cases():
    return [generate(s) for s in SEEDS]


def test_same_seed_same_program() -> None:
    for seed in (0, 1, 99):
        a, b = generate(seed), generate(seed)
        assert a.program.insns == b.program.insns and a.target == b.target
    assert generate(1).program.insns != generate(2).program.insns


def test_generated_bytecode_is_well_formed(cases) -> None:
    for seed, case in zip(SEEDS, cases, strict=True):
        assert check(case.program.insns, HELPER_IDS) == [], f"seed {seed}"


def test_map_references_name_declared_maps(cases) -> None:
    for case in cases:
        for insn in case.program.insns:
            if insn.spec is isa.BY_KEY["lddw_map"]:
                assert 0 <= insn.imm < len(case.program.maps)


def test_hook_targets_name_their_hook(cases) -> None:
    seen = set()
    for case in cases:
        assert case.program.hook == (case.target.hook.name if case.target.hook else None)
        seen.add(case.target.name)
    assert set(HOOKS) <= seen


def test_opcodes_come_from_the_table(cases) -> None:
    used = {i.spec.key for c in cases for i in c.program.insns if i.spec is not None}
    kinds = {isa.BY_KEY[k].kind for k in used}
    assert {isa.Kind.ATOMIC, isa.Kind.CALL_LOCAL, isa.Kind.LDDW, isa.Kind.JCOND,
            isa.Kind.MOVSX, isa.Kind.END} <= kinds
    assert any(isa.BY_KEY[k].cls == isa.Cls.JMP32 for k in used)


def test_builder_resolves_labels_both_ways() -> None:
    b = Builder()
    top, end, fn = b.new_label(), b.new_label(), b.new_label()
    b.place(top)
    b.emit("mov64_k", 0, imm=1)
    b.jump("jgt64_k", end, 0, imm=5)
    b.jump("call_local", fn)
    b.jump("ja", top)
    b.place(end)
    b.emit("exit")
    b.place(fn)
    b.jump("gotol", end)
    insns = b.finish()
    assert insns[1].off == 2 and insns[2].imm == 2 and insns[3].off == -4
    assert insns[5].imm == -2


def test_ins_fills_the_discriminating_field() -> None:
    assert ins("sdiv64_k", 1, imm=3).off == 1
    assert ins("be16", 2).imm == 16
    assert ins("atomic64_fetch_add", 1, 2, -8).imm == isa.ATOMIC_FETCH
    assert ins("lddw_map", 1, imm=0).src == isa.PSEUDO_MAP_FD


def test_targets() -> None:
    names = [t.name for t in targets()]
    assert "mem64" in names and "pt_map" in names
    pt = target_named("pt_lookup")
    assert pt.object_sizes() == {"region": 4096}
    assert target_named("mem24") == Target(None, 24)
    with pytest.raises(KeyError):
        target_named("nope")
