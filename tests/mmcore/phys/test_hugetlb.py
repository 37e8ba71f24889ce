"""The hugetlb pool of 1 GiB pages: boot reservation, growth by
alloc_contig_range (migrating movable pages out, failing on unmovable or
pinned ones), faults from the pool, surplus pages."""

import pytest

from mmcore.constants import MT, ORDER_1G, ORDER_2M, FrameState
from mmcore.errors import InvariantError
from mmcore.mm import MM, MMConfig
from mmcore.phys.compaction.migrate import migrate
from mmcore.phys.hugetlb import HUGETLB_OWNER
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.sources import KERNEL_OWNER, Source
from mmcore.virt.lru import LruList, lid_of

GIB = 1 << 18  # pages
SLAB = KERNEL_OWNER[Source.SLAB_UNMOVABLE]


def machine(gib: int = 2, **cfg) -> MM:
    return MM(MachineSpec((NodeSpec(gib * GIB),)), MMConfig(**cfg))


def fill_first_gib_with_page_cache(mm: MM, pages: int):
    """Page-cache pages spread over the first GiB (every 64th frame)."""
    f = mm.new_file(pages)
    z = mm.phys.zones[0]
    mm.pa.drain_all()
    taken = mm.pa.take_range(z, 0, GIB)
    used = set(range(0, pages * 64, 64))
    for i, pfn in enumerate(sorted(used)):
        mm.pa.prep(pfn, 0, MT.MOVABLE, f.fid, i)
        f.pages[i] = pfn
        f.cached += 1
        mm.lru.add(pfn, lid_of(0, LruList.INACTIVE_FILE))  # page cache is on the LRU
    for lo, hi in taken:
        for pfn in range(lo, hi):
            if pfn not in used:
                mm.pa.free_one(z, pfn, 0, MT.MOVABLE)
    mm.check()
    return f


def test_boot_pages_leave_the_buddy_and_are_not_reclaimable():
    mm = machine(2, hugetlb_boot=1)
    z = mm.phys.zones[0]
    assert mm.hugetlb.nr_hugepages() == 1 and mm.hugetlb.free_count() == 1
    pfn = next(iter(mm.hugetlb.pages))
    assert mm.frames.state[pfn] == FrameState.ALLOC and mm.frames.order[pfn] == ORDER_1G
    assert mm.frames.owner[pfn] == HUGETLB_OWNER and not mm.frames.lru[pfn]
    assert z.free_pages == GIB and z.nr_free[ORDER_1G] == 1
    mm.check()


def test_growth_migrates_movable_pages_out_of_an_aligned_range():
    mm = machine(2)
    f = fill_first_gib_with_page_cache(mm, 1000)
    # the second GiB must be unusable so the pool grows in the first one
    z = mm.phys.zones[0]
    mm.pa.drain_all()
    mm.pa._del(z, GIB)
    mm.pa.prep(GIB + (1 << 17), 0, MT.UNMOVABLE, SLAB, 0)
    mm.kernel.pages[Source.SLAB_UNMOVABLE] += 1  # the kernel counts its pages
    mm.pa.free_range(GIB, GIB + (1 << 17))
    mm.pa.free_range(GIB + (1 << 17) + 1, 2 * GIB)
    mm.check()
    assert mm.hugetlb.set_nr_hugepages(1) == 1
    assert mm.hugetlb.pages == {0}
    assert mm.hugetlb.migrated == 1000
    assert all(p >= GIB for p in f.pages)  # every page cache page moved out
    mm.check()
    assert mm.hugetlb.set_nr_hugepages(2) == 1  # the other GiB holds an unmovable page
    assert mm.hugetlb.grow_failed == 1
    assert mm.hugetlb.set_nr_hugepages(0) == 0
    assert z.nr_free[ORDER_1G] == 1  # given back and merged
    mm.check()


def test_a_pinned_page_fails_the_range():
    mm = machine(2)
    f = fill_first_gib_with_page_cache(mm, 10)
    mm.pinned.add(f.pages[5])
    assert mm.hugetlb.set_nr_hugepages(1) == 1
    assert mm.hugetlb.ranges_failed == 1 and mm.hugetlb.migrated == 0
    assert mm.hugetlb.pages == {GIB}  # the next range, wholly free
    assert all(p < GIB for p in f.pages)  # nothing moved
    mm.check()


def test_a_pinned_anon_page_is_released_on_exit():
    mm = machine(1, pin_rate=1.0)
    p = mm.spawn()
    va = p.mmap(4 << 20, "none")
    p.access(va)
    assert len(mm.pinned) == 1
    mm.check()
    mm.exit(p)
    assert not mm.pinned


def test_a_thp_migrates_as_a_unit():
    mm = machine(1, thp_defrag="always")
    p = mm.spawn()
    va = p.mmap(2 << 20, "thp")
    old = p.access(va)
    assert p.present == [0, 1, 0] and mm.frames.order[old] == ORDER_2M
    z = mm.phys.zones[0]
    mm.pa.drain_all()
    dst = mm.pa.rmqueue_smallest(z, ORDER_2M, MT.MOVABLE)
    migrate(mm, old, dst)
    assert p.access(va) == dst and mm.frames.order[dst] == ORDER_2M
    assert mm.frames.state[old] != FrameState.ALLOC
    assert p.present == [0, 1, 0]
    mm.check()


def test_faults_take_pool_pages_and_surplus_goes_back_to_the_buddy():
    mm = machine(3, hugetlb_boot=1, hugetlb_overcommit=1)
    p = mm.spawn()
    va = p.mmap(2 << 30, "1g")
    p.fault(va)
    p.fault(va + (1 << 30))
    assert p.present[2] == 2 and mm.hugetlb.faults == 2
    assert mm.hugetlb.surplus == [1] and mm.hugetlb.nr_hugepages() == 2
    mm.check()
    mm.exit(p)
    assert mm.hugetlb.nr_hugepages() == 1 and mm.hugetlb.surplus == [0]
    assert mm.hugetlb.free_count() == 1
    mm.check()


def test_without_a_pool_a_1g_fault_falls_back_and_is_counted():
    mm = machine(2)
    p = mm.spawn()
    va = p.mmap(1 << 30, "1g")
    p.fault(va)
    assert p.present[2] == 0 and mm.hugetlb.fault_misses == 1
    assert mm.phys.zones[0].nr_free[ORDER_1G] >= 1  # buddy 1 GiB blocks are not used


def test_the_check_names_a_broken_pool():
    mm = machine(2, hugetlb_boot=1)
    pfn = next(iter(mm.hugetlb.pages))
    mm.frames.owner[pfn] = 99
    with pytest.raises(InvariantError, match="hugetlb"):
        mm.hugetlb.check()
