"""Mutations of programs and the seed corpus."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from bpfvm import isa
from bpfvm.fuzz.builder import ins
from bpfvm.fuzz.generate import generate
from bpfvm.fuzz.mutate import Mutator, load_corpus, mutate, tables
from bpfvm.isa.insn import Insn, check, lddw, map_value_offset
from bpfvm.program import Program
from tests.conftest import CONFORMANCE


def test_width_twins_pair_the_same_operation() -> None:
    twins = tables().twins
    assert twins["add64_k"] == "add32_k" and twins["jgt32_x"] == "jgt64_x"
    assert twins["atomic64_fetch_or"] == "atomic32_fetch_or"
    for a, b in twins.items():
        sa, sb = isa.BY_KEY[a], isa.BY_KEY[b]
        assert sa.op == sb.op and sa.kind is sb.kind and sa.width != sb.width


def test_siblings_share_kind_class_and_operands() -> None:
    for group in tables().siblings.values():
        assert len({(s.kind, s.uses) for s in group}) == 1


# m_value_off applies only to programs with a map-value lddw: tested on its own below
@pytest.mark.parametrize("name", [n for n, _ in Mutator.MUTATIONS if n != "m_value_off"])
def test_each_mutation_changes_a_program(name: str) -> None:
    changed = 0
    for seed in range(30):
        prog = generate(seed).program
        out = getattr(Mutator(random.Random(seed)), name)(list(prog.insns))
        changed += out is not None and out != prog.insns
    assert changed >= 15


def test_mutants_are_deterministic_and_mostly_well_formed() -> None:
    t = tables()
    ok = Counter()
    for seed in range(300):
        case = generate(seed)
        a = mutate(case, random.Random(seed), t)
        b = mutate(case, random.Random(seed), t)
        assert a.program.insns == b.program.insns and a.target == case.target
        ok[not check(a.program.insns)] += 1
    assert ok[True] > 250


def test_sibling_swap_keeps_the_discriminator() -> None:
    prog = Program([ins("atomic64_fetch_add", 10, 1, -8), ins("exit")])
    out = Mutator(random.Random(3)).m_sibling(prog.insns)
    assert out is not None and out[0].spec.kind is isa.Kind.ATOMIC and out[0] != prog.insns[0]


def test_corpus_reads_assembly_and_conformance_vectors(tmp_path: Path) -> None:
    pytest.importorskip("bpfvm.asm.assembler")
    (tmp_path / "a.s").write_text(".hook reclaim\n r0 = 1\n exit\n")
    (tmp_path / "b.data").write_text("-- asm\nmov %r0, 2\nexit\n-- mem\n00 01 02 03\n"
                                     "-- result\n0x2\n")
    (tmp_path / "bad.s").write_text("r0 = \n")
    cases, skipped = load_corpus([tmp_path])
    by_name = {c.program.name: c for c in cases}
    assert by_name["a"].target.name == "reclaim"
    assert by_name["b"].target.name == "mem8" and len(by_name["b"].program.insns) == 2
    assert len(skipped) == 1 and "bad.s" in skipped[0]


def test_conformance_corpus_loads() -> None:
    pytest.importorskip("bpfvm.asm.assembler")
    if not CONFORMANCE.is_dir():
        pytest.skip("conformance vectors (../shared/conformance) not present")
    cases, skipped = load_corpus([CONFORMANCE / "tests"])
    assert len(cases) >= 300 and len(cases) + len(skipped) == 313


def test_corpus_reads_verifier_cases(tmp_path: Path) -> None:
    pytest.importorskip("bpfvm.asm.assembler")
    (tmp_path / "v.cases").write_text(
        "## case: ok\n## ctx: 16\n## expect: accept\nr0 = *(u64 *)(r1 + 8)\nexit\n\n"
        "## case: hooked\n## hook: reclaim\n## expect: accept\nr0 = 1\nexit\n\n"
        "## case: test-hook\n## hook: policy\n## expect: accept\nr0 = 1\nexit\n")
    cases, skipped = load_corpus([tmp_path])
    by_name = {c.program.name: c for c in cases}
    assert by_name["ok"].target.name == "mem16" and by_name["hooked"].program.hook == "reclaim"
    assert len(skipped) == 1 and "test hook 'policy'" in skipped[0]


def test_corpus_takes_bpf_objects(tmp_path: Path) -> None:
    import shutil

    from tests.bpfvm.asm.cc import C_DATA, build

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(build(C_DATA / "features.c", tmp_path), corpus / "features.o")
    (corpus / "broken.o").write_bytes(b"\x7fELF\x01")
    cases, skipped = load_corpus([corpus])
    assert sorted(c.program.hook for c in cases) == ["lifetime", "placement"]
    assert len(skipped) == 1 and "broken.o" in skipped[0]


def test_value_offset_mutation_moves_the_lddw_offset() -> None:
    first, second = lddw(1, 0, isa.PSEUDO_MAP_VALUE)
    insns = [first, second, Insn(0x95)]
    seen = set()
    for seed in range(60):
        out = Mutator(random.Random(seed)).m_value_off(insns)
        assert out is not None and len(out) == 3 and out[0] == first
        seen.add(map_value_offset(out[0], out[1]))
    assert {8, 64, 0xFFFFFFF8} <= seen  # both signs, around the value sizes
    assert Mutator(random.Random(0)).m_value_off([Insn(0x95)]) is None
