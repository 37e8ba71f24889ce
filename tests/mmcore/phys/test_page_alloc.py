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
