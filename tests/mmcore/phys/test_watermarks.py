"""Watermark and pcp sizing arithmetic, checked by hand."""

from mmcore.phys.page_alloc import PageAllocator
from mmcore.phys.physmem import MachineSpec, NodeSpec, PhysMem
from mmcore.phys.watermarks import min_free_kbytes, pcp_high, zone_batchsize, zone_watermarks


def test_min_free_kbytes_is_sqrt_of_16x_lowmem_clamped():
    assert min_free_kbytes(1 << 18) == 4096  # 1 GiB: sqrt(16 * 1048576)
    assert min_free_kbytes(1 << 22) == 16384  # 16 GiB
    assert min_free_kbytes(16) == 128  # clamped up
    assert min_free_kbytes(1 << 32) == 262144  # 16 TiB: clamped down


def test_normal_zone_watermarks():
    # pages_min = 4096 kB / 4 = 1024; the zone is all of lowmem
    wm = zone_watermarks(1 << 18, False, 1 << 18, 4096)
    step = max(1024 // 4, (1 << 18) * 10 // 10000)  # 262
    assert (wm.min, wm.low, wm.high) == (1024, 1024 + step, 1024 + 2 * step)


def test_movable_zone_min_is_capped():
    wm = zone_watermarks(1 << 18, True, 1 << 18, 4096)
    assert wm.min == 128  # clamp(262144 / 1024, 32, 128)
    assert wm.low - wm.min == wm.high - wm.low == 262


def test_watermark_scale_factor_dominates_on_large_zones():
    wm = zone_watermarks(1 << 22, False, 1 << 22, 16384, scale_factor=100)
    assert wm.low - wm.min == (1 << 22) * 100 // 10000


def test_batch_and_high():
    assert zone_batchsize(1 << 18) == 63  # min(256, 256) / 4 = 64 -> 2^6 - 1
    assert zone_batchsize(1 << 14) == 3  # 16/4 = 4; 4 + 2 = 6 -> 4 - 1
    assert zone_batchsize(100) == 1
    assert pcp_high(63) == 378


def test_allocator_splits_min_across_zones_by_size():
    pa = PageAllocator(PhysMem(MachineSpec((NodeSpec(1 << 18), NodeSpec(1 << 19, 1 << 18)))))
    normal0, normal1 = pa.zones[0], pa.zones[2]
    lowmem = (1 << 18) * 2
    assert pa.min_free_kbytes == min_free_kbytes(lowmem) == 5792
    assert normal0.wmark_min == (5792 // 4) * (1 << 18) // lowmem == normal1.wmark_min
    assert pa.zones[3].wmark_min == 128


def test_lowmem_reserve_follows_setup_per_zone_lowmem_reserve():
    from mmcore.phys.watermarks import lowmem_reserve

    assert lowmem_reserve([1000, 64000]) == [[0, 2000], [0, 0]]
    assert lowmem_reserve([0, 64000]) == [[0, 0], [0, 0]]  # empty zone: none
    assert lowmem_reserve([1000, 0]) == [[0, 0], [0, 0]]


def test_movable_allocations_leave_the_reserve_of_the_normal_zone():
    from mmcore.constants import MT
    from mmcore.mm import MM
    from mmcore.phys.physmem import MachineSpec, NodeSpec
    from mmcore.sources import KERNEL_OWNER, Source

    mm = MM(MachineSpec((NodeSpec(8192, 6144),)))
    normal, movable = mm.phys.nodes[0].zones
    assert normal.lowmem_reserve == [0, 6144 // 32] and movable.lowmem_reserve == [0, 0]
    f = mm.new_file(8192)
    n = 0
    while mm.pa.alloc(0, MT.MOVABLE, f.fid, n, 0, 0) >= 0:  # no reclaim
        n += 1
    mm.pa.drain_all()
    # movable pages stopped at the normal zone's min watermark + reserve ...
    assert normal.free_pages >= normal.wmark_min + normal.lowmem_reserve[1]
    # ... which unmovable allocations may still use
    slab = KERNEL_OWNER[Source.SLAB_UNMOVABLE]
    assert mm.pa.alloc(0, MT.UNMOVABLE, slab, 0, 0, 0) >= 0
