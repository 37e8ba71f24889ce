"""A machine whose compiled steps run (the buddy take and free, the LRU
add of the fault path) and one whose Python steps run end in the same
state after the same random processes: 4 KiB and THP faults, partial
munmaps, reclaim under pressure and exits."""

from __future__ import annotations

import os
import platform
import random
import types

import pytest

from mmcore.mm import MM, MMConfig
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.sources import Source
from mmcore.virt.lru import LruLists
from tests.mmcore.virt.test_populate import _state

pytestmark = pytest.mark.skipif(
    platform.python_implementation() != "CPython" or os.environ.get("BPFVM_NATIVE") == "0",
    reason="the compiled steps need CPython's C API and BPFVM_NATIVE unset or not 0")


def _machine(compiled: bool, seed: int) -> MM:
    mm = MM(MachineSpec((NodeSpec(8192, 2048), NodeSpec(8192))),
            MMConfig(pin_rate=0.2, thp_defrag=("madvise", "always", "defer")[seed % 3]))
    for i in range(200):  # unmovable pages scattered: later allocations fall back
        mm.kernel.alloc(Source.SLAB_UNMOVABLE, i % 3, 10**6, nid=i & 1)
    if compiled:
        assert isinstance(mm.lru.add_new, types.BuiltinFunctionType)
        assert mm.pa.native_take is not None and mm.pa.native_free is not None
    else:
        mm.pa.native_take = mm.pa.native_free = None
        mm.lru.add_new = types.MethodType(LruLists.add_new, mm.lru)
    return mm


def _run(seed: int, compiled: bool) -> tuple[list[int], dict]:
    rng = random.Random(seed)
    mm = _machine(compiled, seed)
    got: list[int] = []
    procs = []
    for step in range(400):
        roll = rng.random()
        if roll < 0.08 or not procs:
            p = mm.spawn()
            size = rng.choice((1, 4, 12)) << 21
            procs.append((p, p.mmap(size, rng.choice(("none", "thp"))), size))
            continue
        p, va, size = procs[rng.randrange(len(procs))]
        if not p.alive:
            procs.remove((p, va, size))
            continue
        if roll < 0.095:
            mm.exit(p)
            procs.remove((p, va, size))
        elif roll < 0.16:
            off = rng.randrange(size >> 12) << 12
            p.munmap(va + off, min(size - off, rng.choice((1, 300, 1024)) << 12))
        else:
            for _ in range(rng.choice((1, 64, 512))):
                got.append(p.fault(va + (rng.randrange(size >> 12) << 12)))
                if not p.alive:  # the OOM killer chose it
                    break
        if step % 40 == 0:
            mm.background()
    return got, {**_state(mm), "lru entries per zone": list(mm.lru.zone_entries)}


@pytest.mark.parametrize("seed", range(6))
def test_compiled_and_python_steps_leave_the_same_machine(seed):
    got, state = _run(seed, True)
    want, expected = _run(seed, False)
    assert got == want
    assert any(pfn >= 0 for pfn in got) and any(pfn < 0 for pfn in got)  # some hit munmapped va
    assert state["alloc"]["direct_reclaims"]  # under pressure (and swapping, but with madvise)
    for key in expected:
        assert state[key] == expected[key], key
