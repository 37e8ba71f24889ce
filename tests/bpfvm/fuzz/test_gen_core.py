"""Bookkeeping of programs under construction: indexes, guards, the stack."""

from __future__ import annotations

import random

import pytest

from bpfvm import isa
from bpfvm.fuzz.builder import Target, target_named
from bpfvm.fuzz.gen_core import CTX, LONG, SCRATCH, GenCore


def core(seed: int = 0, bad: float = 0.0, target: Target | None = None) -> GenCore:
    return GenCore(random.Random(seed), target or Target(None, 64), bad, 4)


@pytest.mark.parametrize("limit", [0, 1, 7, 10, 63, 4088])
def test_masked_or_reduced_index_stays_within_its_limit(limit: int) -> None:
    for seed in range(40):
        g = core(seed)
        reg = g.index(limit)
        if reg < 0:
            continue  # the caller guards it
        last = g.b.slots[-1]
        assert last.dst == reg
        if last.spec.op == "and":
            assert 0 <= last.imm <= limit
        else:
            assert last.spec.op == "mod" and last.imm == limit + 1


def test_guard_compares_against_the_limit() -> None:
    for seed in range(40):
        g = core(seed)
        end = g.guard(3, 10)
        assert g.depth == 1 and end in [label for _, label in g.b.fixups]
        imms = {i.imm for i in g.b.slots if i.spec.kind is isa.Kind.JCOND}
        assert imms & {10, 11}


def test_fill_stack_only_at_top_level() -> None:
    g = core()
    assert g.fill_stack(-16, 16) and set(range(-16, 0)) <= g.init
    assert len(g.b.slots) == 2
    g.depth = 1
    assert not g.fill_stack(-64, 8) and g.fill_stack(-16, 8)


def test_scratch_and_dst_respect_pins() -> None:
    g = core()
    g.pinned = {0, 1, 2, 3, 4}
    assert all(g.scratch() == 5 for _ in range(10))
    g.pinned |= set(LONG)
    assert all(g.dst() in SCRATCH for _ in range(10))


def test_context_loads_match_hook_fields() -> None:
    target = target_named("hugepage")
    for seed in range(30):
        g = core(seed, target=target)
        g.ctx_load(7)
        insn = g.b.slots[-1]
        assert insn.src == CTX and target.hook.field_at(insn.off, insn.spec.width) is not None


def test_defects_are_noted() -> None:
    g = core(bad=1.0)
    assert g.bad("no-null-check") and g.notes == ["bad:no-null-check"]
