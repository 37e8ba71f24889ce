"""khugepaged: collapse of 4 KiB-mapped 2 MiB ranges into THPs, per
max_ptes_none, young and pinned pages, and the scan rate."""

import pytest

from mmcore.constants import ORDER_2M
from mmcore.errors import InvariantError
from mmcore.mm import MM, MMConfig
from mmcore.pagetables.pte import PTE_ACCESSED, pte_order
from mmcore.phys.physmem import MachineSpec, NodeSpec


def machine(**cfg) -> MM:
    return MM(MachineSpec((NodeSpec(8192),)), MMConfig(**cfg))


def small_pages(mm: MM, touched: int, madvised: bool = True):
    p = mm.spawn()
    va = p.mmap(2 << 20, "thp", madvised=madvised)
    p.vmas[-1].huge = "none"  # faulted with 4 KiB pages, as a VMA before MADV_HUGEPAGE
    for i in range(touched):
        p.access(va + (i << 12))
    p.vmas[-1].huge = "thp"
    assert p.present == [touched, 0, 0]
    return p, va


def test_a_range_with_few_empty_ptes_is_collapsed():
    mm = machine(khugepaged_max_ptes_none=64)
    p, va = small_pages(mm, 500)
    mm.khugepaged.scan()
    assert mm.khugepaged.collapsed == 1
    assert p.present == [0, 1, 0]
    assert pte_order(mm.mem.read(p.pt.get_pte(va))) == ORDER_2M
    pfn = p.access(va + (3 << 12))
    assert mm.frames.order[pfn - 3] == ORDER_2M
    mm.check()


def test_too_many_empty_ptes_or_no_young_page_or_a_pin_prevent_collapse():
    mm = machine(khugepaged_max_ptes_none=64)
    p, _ = small_pages(mm, 400)  # 112 empty > 64
    mm.khugepaged.scan()
    assert mm.khugepaged.collapsed == 0 and mm.khugepaged.ranges_scanned == 1
    mm = machine(khugepaged_max_ptes_none=511)
    p, va = small_pages(mm, 1)
    loc = p.pt.get_pte(va)
    mm.mem.write(loc, mm.mem.read(loc) & ~PTE_ACCESSED)  # not young
    mm.khugepaged.scan()
    assert mm.khugepaged.collapsed == 0
    mm = machine()
    p, va = small_pages(mm, 10)
    mm.pinned.add(p.access(va))
    mm.khugepaged.scan()
    assert mm.khugepaged.collapsed == 0
    mm.check()


def test_thp_disabled_vmas_are_not_scanned():
    mm = machine(thp_enabled="madvise")
    small_pages(mm, 512, madvised=False)
    mm.khugepaged.scan()
    assert mm.khugepaged.ranges_scanned == 0


def test_the_scan_rate_limits_a_pass_and_the_next_resumes():
    mm = machine(khugepaged_pages_to_scan=512, khugepaged_scan_sleep_millisecs=100,
                 tick_millisecs=10)
    a, _ = small_pages(mm, 512)
    b, _ = small_pages(mm, 512)
    for t in range(1, 10):
        mm.khugepaged.run(t)
    assert mm.khugepaged.passes == 0  # sleeping: 100 ms = 10 ticks
    mm.khugepaged.run(10)
    assert mm.khugepaged.collapsed == 1 and a.present == [0, 1, 0] and b.present[1] == 0
    mm.khugepaged.run(20)
    assert mm.khugepaged.collapsed == 2 and b.present == [0, 1, 0]
    mm.check()


def test_the_check_names_a_range_mapped_both_ways():
    mm = machine()
    p, va = small_pages(mm, 512)
    mm.khugepaged.scan()
    p.pmd_count[va >> 21] = 1
    with pytest.raises(InvariantError, match="khugepaged"):
        mm.khugepaged.check()
