"""The generator's snippets: each is drawn, each defect is injected."""

from __future__ import annotations

from collections import Counter

import pytest

from bpfvm.fuzz.generate import Gen, generate

SEEDS = range(600)


@pytest.fixture(scope="module")
def cases():
    return [generate(s) for s in SEEDS]


def test_snippet_table_names_methods() -> None:
    for name, weight in Gen.SNIPPETS:
        assert callable(getattr(Gen, name)) and weight > 0


@pytest.mark.parametrize("snippet", ["alu", "mov", "ctx", "const_access", "ptr_arith", "spill",
                                     "stack_read", "map_lookup", "map_update", "atomic", "loop",
                                     "diamond", "jmp32", "call", "helper"])
def test_every_snippet_is_drawn(cases, snippet: str) -> None:
    counts = Counter(n for c in cases for n in c.notes)
    assert counts[snippet] >= 10


@pytest.mark.parametrize("defect", ["no-null-check", "bound-off-by-one", "mask-too-wide",
                                    "uninit-stack", "ptr-alu", "jmp32-guards-64",
                                    "loop-no-progress", "ctx-oob", "ret-range"])
def test_defects_are_injected(defect: str) -> None:
    notes = Counter(n for s in range(1500) for n in generate(s, bad=0.3).notes)
    assert notes[f"bad:{defect}"] > 0


def test_no_defect_without_bad_rate(cases) -> None:
    for seed in range(200):
        assert not [n for n in generate(seed, bad=0.0).notes if n.startswith("bad:")]
