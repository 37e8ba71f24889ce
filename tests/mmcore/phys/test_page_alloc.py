"""The allocator front end: pcp batching, watermarks, the slow path."""

import pytest

from mmcore.constants import MT, FrameState
from mmcore.phys.page_alloc import PageAllocator
from mmcore.phys.physmem import MachineSpec, NodeSpec, PhysMem
from tests.mmcore.machines import small_mm


def test_pcp_refills_a_batch_and_drains_above_high():
    pa = PageAllocator(PhysMem(MachineSpec((NodeSpec(1 << 16),))))
    z = pa.zones[0]
    pfn = pa.alloc(0, MT.MOVABLE, 5)
    assert len(z.pcp[MT.MOVABLE]) == z.batch - 1
    assert z.free_pages == (1 << 16) - z.batch
    pa.free(pfn)
    assert pa.st[pfn] == FrameState.PCP
    pfns = [pa.alloc(0, MT.MOVABLE, 5) for _ in range(z.pcp_high + z.batch)]
    for p in pfns:
        pa.free(p)
    assert len(z.pcp[MT.MOVABLE]) <= z.pcp_high
    assert pa.stats.pcp_drains >= 1


def test_double_free_is_refused():
    pa = PageAllocator(PhysMem(MachineSpec((NodeSpec(1024),))))
    p = pa.alloc(0, MT.MOVABLE, 5)
    pa.free(p)
    with pytest.raises(ValueError):
        pa.free(p)


def test_unmovable_never_lands_in_the_movable_zone():
    pa = PageAllocator(PhysMem(MachineSpec((NodeSpec(4096, 2048),))))
    pfns = [pa.alloc(0, MT.UNMOVABLE, 5, flags=0) for _ in range(3000)]
    got = [p for p in pfns if p >= 0]
    assert got and all(p < 2048 for p in got)
    assert len(got) < 2048  # stops at the normal zone's watermark


def test_movable_prefers_the_movable_zone_then_normal():
    pa = PageAllocator(PhysMem(MachineSpec((NodeSpec(4096, 2048),))))
    assert pa.alloc(0, MT.MOVABLE, 5) >= 2048


def test_remote_node_used_when_local_is_exhausted():
    pa = PageAllocator(PhysMem(MachineSpec((NodeSpec(2048), NodeSpec(2048)))))
    pfns = [pa.alloc(0, MT.UNMOVABLE, 5, nid=0, flags=0) for _ in range(3000)]
    assert any(p >= 2048 for p in pfns)


def test_slow_path_reclaims_to_satisfy_an_allocation():
    mm = small_mm(2048)
    f = mm.new_file(4096)
    n = 0
    while n < 4096 and f.read(n) >= 0:
        n += 1
    assert n == 4096  # reclaim kept the page cache going past memory size
    assert mm.pa.stats.direct_reclaims + mm.reclaim.kswapd_runs > 0 or mm.stats.file_evictions
    mm.check()


def _one_by_one(pa: PageAllocator, z, mt: int) -> int:
    """The refill as ``rmqueue_bulk`` states it: ``batch`` single rmqueue calls."""
    lst = z.pcp[mt]
    for _ in range(z.batch):
        pfn = pa.rmqueue(z, 0, mt)
        if pfn < 0:
            break
        pa.st[pfn] = FrameState.PCP
        pa.ordr[pfn] = 0
        lst.append(pfn)
    return lst.pop() if lst else -1


def _state(pa: PageAllocator) -> tuple:
    fr = pa.phys.frames
    zones = [(list(z.heads), list(z.counts), list(z.nr_free), z.free_pages, z.pcp)
             for z in pa.zones]
    return (bytes(fr.state), bytes(fr.order), bytes(fr.mt), fr.nxt.tobytes(),
            fr.prv.tobytes(), bytes(fr.pb_mt), repr(zones))


@pytest.mark.parametrize("seed", range(6))
def test_pcp_refill_leaves_the_state_of_single_rmqueue_calls(seed):
    """The refill that splits a block in one go (and its page-by-page
    steps) leaves every frame array, list and count exactly as ``batch``
    single ``rmqueue`` calls do, on fragmented zones with fallbacks."""
    import random

    def run(refill) -> tuple:
        rng = random.Random(seed)
        pa = PageAllocator(PhysMem(MachineSpec((NodeSpec(1 << 14, 1 << 12),))))
        held = []
        for _ in range(3000):
            r = rng.random()
            if r < 0.1 and held:
                pa.free(held.pop(rng.randrange(len(held))))
            elif r < 0.2:
                pfn = pa.alloc(rng.choice((1, 2, 3, 9)), rng.choice((0, 1, 2)), 7, flags=0)
                if pfn >= 0:
                    held.append(pfn)
            else:
                mt = rng.choice((MT.MOVABLE, MT.MOVABLE, MT.UNMOVABLE))
                z = pa.zones[rng.randrange(2)] if mt == MT.MOVABLE else pa.zones[0]
                if z.free_pages > z.batch:
                    pfn = refill(pa, z, mt)
                    if pfn >= 0:
                        pa.prep(pfn, 0, mt, 7, 0)
                        held.append(pfn)
        return _state(pa)

    assert run(PageAllocator._pcp_refill) == run(_one_by_one)
