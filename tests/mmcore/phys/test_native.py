"""The compiled list steps (``mmcore.phys.native``) leave the state the
Python ones (``Buddy.rmqueue_smallest`` and ``prep``, ``Buddy.free_one``) leave: random
block allocations and frees, of every migratetype and of orders 0-18
(pcp refills and drains, fallbacks, splits from the largest blocks,
merges back), on two machines side by side."""

from __future__ import annotations

import os
import platform
import random

import pytest

from mmcore.constants import MT, NR_MT, NR_ORDERS, FrameState
from mmcore.invariants.frames import FrameView, check_free_counters, check_tiling
from mmcore.invariants.lists import check_free_lists
from mmcore.mm import MM
from mmcore.phys import native
from mmcore.phys.physmem import MachineSpec, NodeSpec

CPYTHON = platform.python_implementation() == "CPython"
# the compiled steps are there: CPython, and not turned off for this run
COMPILED = CPYTHON and os.environ.get("BPFVM_NATIVE", "1") != "0"
NO_STEPS = "the compiled steps need CPython's C API and BPFVM_NATIVE unset or not 0"


def _state(mm: MM) -> tuple:
    fr = mm.frames
    arrays = {k: bytes(v) for k, v in vars(fr).items() if isinstance(v, (bytearray, memoryview))}
    zones = [(list(z.heads), list(z.counts), list(z.nr_free), z.free_pages, z.pcp)
             for z in mm.phys.zones]
    return arrays, zones, mm.pa.steals, vars(mm.pa.stats)


def _pair() -> tuple[MM, MM]:
    spec = MachineSpec((NodeSpec(1 << 15, 1 << 13), NodeSpec(1 << 14)))
    compiled, python = MM(spec), MM(spec)
    python.pa.native_take = python.pa.native_free = None
    return compiled, python


@pytest.mark.skipif(not COMPILED, reason=NO_STEPS)
def test_the_compiled_step_is_there_on_cpython():
    steps = native.compiled()
    assert steps is not None
    pa = MM(MachineSpec((NodeSpec(4096),))).pa
    assert pa.native_take is steps.take and pa.native_free is steps.free


def test_bpfvm_native_0_keeps_the_python_step(monkeypatch):
    monkeypatch.setenv("BPFVM_NATIVE", "0")
    assert native.compiled.__wrapped__() is None


@pytest.mark.skipif(not COMPILED, reason=NO_STEPS)
@pytest.mark.parametrize("seed", range(6))
def test_random_allocations_and_frees_leave_the_same_state(seed):
    rng = random.Random(seed)
    mms = _pair()
    held: list[list[int]] = [[], []]
    for step in range(1500):
        if held[0] and rng.random() < 0.45:
            k = rng.randrange(len(held[0]))
            for mm, h in zip(mms, held, strict=True):
                mm.free(h.pop(k))
            continue
        order = rng.choice((1, 2, 3, 5, 9, 9, 9, 10, 13, 18) if step % 7 else (0, 4))
        mt = rng.randrange(NR_MT)
        index = rng.choice((0, step, (1 << 32) - 1, 1 << 33, -5))
        nid = rng.randrange(2)
        got = [mm.pa.alloc(order, mt, 1 + step % 5, index, nid, 0) for mm in mms]
        assert got[0] == got[1], step
        if got[0] >= 0:
            for h, pfn in zip(held, got, strict=True):
                h.append(pfn)
    assert _state(mms[0]) == _state(mms[1])
    assert held[0]  # allocations happened and some failed for want of memory or blocks
    v = FrameView(mms[0])  # and that state is a consistent one
    check_tiling(mms[0], v)
    check_free_counters(mms[0], v)
    check_free_lists(mms[0], v)


@pytest.mark.skipif(not COMPILED, reason=NO_STEPS)
def test_the_compiled_step_clears_a_high_index_byte_and_reports_no_block():
    mm = MM(MachineSpec((NodeSpec(1 << 14),)))
    pa, fr = mm.pa, mm.frames
    pfn = pa.alloc(9, int(MT.MOVABLE), 3, 5 << 32)  # above 32 bits: the Python step
    assert fr.get_index(pfn) == 5 << 32 and fr.index_hi[pfn] == 5
    mm.free(pfn)
    again = pa.alloc(9, int(MT.MOVABLE), 3, 77)
    assert again == pfn and fr.get_index(pfn) == 77 and fr.index_hi[pfn] == 0
    assert fr.state[pfn] == FrameState.ALLOC and fr.order[pfn] == 9 and fr.owner[pfn] == 3
    z = mm.phys.zones[0]
    take = pa.native_take
    empty = next(m for m in range(NR_MT) if not any(
        z.heads[o * NR_MT + m] >= 0 for o in range(1, NR_ORDERS)))
    before = _state(mm)
    assert take(z.desc, 1, empty, 3, 0) == -1
    assert _state(mm) == before
