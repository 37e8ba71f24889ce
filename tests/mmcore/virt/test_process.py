"""Faults of every page size, fallback, munmap, exit and translation."""

from mmcore.constants import ORDER_2M
from mmcore.mm import MM, MMConfig
from mmcore.pagetables.pte import PTE_PRESENT, pte_order
from mmcore.phys.physmem import MachineSpec, NodeSpec
from tests.mmcore.machines import fragment, small_mm


def test_4k_faults_map_owned_frames():
    mm = small_mm()
    p = mm.spawn()
    va = p.mmap(64 << 10, "none")
    for off in range(0, 64 << 10, 4096):
        assert p.fault(va + off) >= 0
    assert p.present == [16, 0, 0] and mm.stats.faults == 16
    assert p.fault(va) >= 0 and mm.stats.faults == 16  # already mapped: no new fault
    mm.check()


def test_thp_fault_maps_2m_and_counts_success():
    mm = small_mm(4096)
    p = mm.spawn()
    va = p.mmap(4 << 20, "thp")
    pfn = p.fault(va + 0x3000)
    assert p.present == [0, 1, 0]
    assert mm.stats.huge_attempts[1] == 1 and mm.stats.huge_success[1] == 1
    assert pfn & 511 == 3
    e = mm.mem.read(p.pt.get_pte(va))
    assert e & PTE_PRESENT and pte_order(e) == ORDER_2M
    mm.check()


def test_thp_falls_back_to_4k_without_a_free_2m_block():
    mm = small_mm(2048)
    fragment(mm)
    p = mm.spawn()
    va = p.mmap(2 << 20, "thp")
    assert p.fault(va) >= 0
    assert p.present == [1, 0, 0]
    assert mm.stats.huge_attempts[1] == 1 and mm.stats.huge_success[1] == 0
    mm.check()


def test_1g_fault_needs_an_aligned_gigabyte():
    mm = MM(MachineSpec((NodeSpec(1 << 19),)), MMConfig(hugetlb_boot=1))  # 2 GiB node
    assert mm.hugetlb.free_count() == 1
    p = mm.spawn()
    va = p.mmap(1 << 30, "1g")
    p.fault(va + 12345)
    assert p.present == [0, 0, 1] and mm.stats.huge_success[2] == 1
    mm.check()
    small = p.mmap(4 << 20, "1g")  # too small for 1 GiB: THP instead
    p.fault(small)
    assert p.present == [0, 1, 1]
    mm.exit(p)
    mm.check()
    assert mm.hugetlb.free_count() == 1  # back in the pool, not the buddy
    free = mm.pa.free_pages_node(0) + sum(z.pcp_pages() for z in mm.phys.zones)
    assert free == (1 << 19) - (1 << 18)


def test_munmap_frees_frames_and_splits_vmas():
    mm = small_mm()
    p = mm.spawn()
    va = p.mmap(8 << 20, "thp")
    for off in range(0, 8 << 20, 1 << 20):
        p.fault(va + off)
    assert p.present[1] == 4
    p.munmap(va + (2 << 20), 2 << 20)
    assert p.present[1] == 3
    assert [(v.start - va, v.end - va) for v in p.vmas] == [(0, 2 << 20), (4 << 20, 8 << 20)]
    assert p.fault(va + (2 << 20)) == -1 and mm.stats.segv == 1
    mm.check()


def test_access_walks_once_then_hits_the_tlb():
    mm = small_mm()
    p = mm.spawn()
    va = p.mmap(1 << 20, "none")
    p.access(va)  # miss, walk, fault
    refs = mm.stats.walk_refs
    p.access(va + 8)
    assert p.tlb.hits == 1 and mm.stats.walk_refs == refs
    assert mm.stats.walks == 1


def test_exit_returns_every_frame_including_page_tables():
    mm = small_mm()
    before = mm.pa.free_pages_node(0)
    p = mm.spawn()
    va = p.mmap(1 << 20, "none")
    for off in range(0, 1 << 20, 4096):
        p.fault(va + off)
    mm.exit(p)
    mm.pa.drain_all()
    assert mm.pa.free_pages_node(0) == before
    mm.check()


def test_partial_munmap_splits_a_thp_and_keeps_the_rest_mapped():
    mm = MM(MachineSpec((NodeSpec(4096),)), MMConfig(thp_defrag="always"))
    p = mm.spawn()
    va = p.mmap(2 << 20, "thp")
    head = p.access(va)
    assert p.present == [0, 1, 0]
    p.munmap(va, 64 << 10)  # the first 16 pages
    assert p.present == [512 - 16, 0, 0] and mm.stats.thp_splits == 1
    assert p.access(va + (100 << 12)) == head + 100  # still the same frame
    assert p.pt.get_pte(va) is None or not mm.mem.read(p.pt.get_pte(va)) & PTE_PRESENT
    assert mm.frames.order[head + 100] == 0
    mm.check()
    mm.exit(p)
    mm.check()


def test_thp_enabled_and_defrag_decide_the_fault_flags():
    from mmcore.constants import AllocFlag
    from mmcore.virt.faults import thp_fault_flags

    direct = AllocFlag.RECLAIM | AllocFlag.COMPACT
    assert thp_fault_flags("always", False) == direct
    assert thp_fault_flags("defer", True) == AllocFlag.KSWAPD
    assert thp_fault_flags("madvise", False) == 0 and thp_fault_flags("madvise", True) == direct
    assert thp_fault_flags("defer+madvise", False) == AllocFlag.KSWAPD
    assert thp_fault_flags("never", True) == 0
    mm = MM(MachineSpec((NodeSpec(4096),)), MMConfig(thp_enabled="madvise"))
    p = mm.spawn()
    plain, advised = p.mmap(2 << 20, "thp"), p.mmap(2 << 20, "thp", madvised=True)
    p.access(plain)
    p.access(advised)
    assert p.present == [1, 1, 0]
