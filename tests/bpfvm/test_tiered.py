"""The tiered engine (``engine="auto"``): the interpreter first, the JIT
after a set number of runs, with the same results, maps and faults."""

from __future__ import annotations

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.engine import FAULT, Tiered
from bpfvm.errors import VmFault
from bpfvm.load import load
from bpfvm.stdhelpers import standard_helpers

HELPERS = standard_helpers()

# returns how often it has run before (a counter in an array map)
COUNTER = """
.map counts array key=4 value=8 entries=1
    *(u32 *)(r10 - 4) = 0
    r1 = map[counts] ll
    r2 = r10
    r2 += -4
    call map_lookup_elem
    if r0 == 0 goto none
    r2 = *(u64 *)(r0 + 0)
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    r0 = r2
    exit
none:
    r0 = 0
    exit
"""


def tiered(text: str, after: int, **kw: object) -> Tiered:
    eng = load(assemble(text, helpers=HELPERS), helpers=HELPERS, engine="auto", ctx_size=8,
               **kw).engine
    assert isinstance(eng, Tiered)
    eng.after = after
    return eng


def test_runs_move_to_the_jit_after_the_set_number_sharing_maps() -> None:
    eng = tiered(COUNTER, after=4)
    tiers = []
    results = []
    for _ in range(9):
        results.append(eng.run(bytearray(8)))
        tiers.append(eng.tier)
    assert results == list(range(9))  # the counter carried over: one map for both tiers
    assert tiers == ["interp"] * 4 + ["jit"] * 5
    assert type(eng.current).__name__ == "Jit" and eng.maps is eng.interp.maps


def test_bound_calls_count_and_swap_hands_over_the_jit() -> None:
    eng = tiered(COUNTER, after=3)
    swapped = []
    fn = eng.bind(bytearray(8), swapped.append)
    assert [fn() for _ in range(3)] == [0, 1, 2] and not swapped
    assert fn() == 3 and eng.tier == "jit" and len(swapped) == 1
    assert swapped[0]() == 4 and fn() == 5  # the old function keeps working too
    assert eng.run(bytearray(8)) == 6  # run() and bound calls share the counter


def test_faults_are_reported_by_the_tier_that_ran() -> None:
    eng = tiered("r0 = *(u64 *)(r1 + 64)\nexit\n", after=1, verify=False, checked=True)
    fn = eng.bind(bytearray(8))
    assert fn() == FAULT and eng.tier == "interp"
    with pytest.raises(VmFault, match="pc 0"):
        eng.check()
    assert fn() == FAULT and eng.tier == "jit"
    with pytest.raises(VmFault, match="pc 0"):
        eng.check()
    eng.check()  # nothing pending after a check


def test_address_of_moves_to_the_jit_at_once() -> None:
    eng = tiered(COUNTER, after=1000)
    buf = bytearray(64)
    addr = eng.address_of(buf, "region")
    assert eng.tier == "jit" and addr == eng.jit.address_of(buf)


def test_forced_engines_stay_put() -> None:
    prog = assemble(COUNTER, helpers=HELPERS)
    for name in ("interp", "jit"):
        eng = load(prog, helpers=HELPERS, engine=name, ctx_size=8).engine
        assert not isinstance(eng, Tiered)


def test_a_native_entry_only_once_on_the_jit() -> None:
    eng = tiered(COUNTER, after=2)
    buf = bytearray(8)
    assert eng.native_entry(buf) is None
    eng.tier_up()
    assert eng.native_entry(buf) == eng.jit.native_entry(buf) is not None
