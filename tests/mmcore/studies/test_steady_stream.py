"""The steady reference window: no faults, translation figures per 1,000
references that follow the page size the memory is mapped with."""

from __future__ import annotations

from mmcore.studies.steady_stream import populated_regions, steady_window
from tests.mmcore.machines import small_mm


def populate(huge: str, mib: int = 64, sparse: bool = False):
    mm = small_mm(64 * 1024)  # 256 MiB
    p = mm.spawn()
    va = p.mmap(mib << 20, huge)
    step = (2 << 20) if huge == "thp" else 4096
    for off in range(0, mib << 20, step * (2 if sparse else 1)):
        assert p.fault(va + off) >= 0
    return mm, p, va


def test_regions_are_the_populated_2m_ranges_in_address_order():
    mm, p, va = populate("none", mib=8, sparse=True)
    regions = populated_regions(p)
    assert regions == [(va + (i << 21), 1 << 21) for i in range(4)]
    mm2, p2, va2 = populate("thp", mib=8)
    assert populated_regions(p2) == [(va2 + (i << 21), 1 << 21) for i in range(4)]
    assert p2.present[1] == 4


def test_window_neither_faults_nor_allocates_and_counts_only_after_warmup():
    mm, p, _ = populate("none", mib=16, sparse=True)  # half the pages never touched
    faults, free = mm.stats.faults, mm.pa.free_pages_node(0)
    got = steady_window(mm, accesses=2000)
    assert got["accesses"] == 2000
    assert mm.stats.faults == faults and mm.pa.free_pages_node(0) == free
    assert 0 < got["tlb_misses_per_1k"] <= 1000
    assert got["walk_refs_per_1k"] >= got["tlb_misses_per_1k"]  # a miss walks at least once


def test_huge_pages_cut_misses_and_walk_references():
    small = steady_window(populate("none", mib=64)[0], accesses=4000)
    huge = steady_window(populate("thp", mib=64)[0], accesses=4000)
    # 16,384 4 KiB pages do not fit 1,536 TLB entries; 32 THPs do
    assert huge["tlb_misses_per_1k"] < small["tlb_misses_per_1k"] / 10
    assert huge["walk_refs_per_1k"] < small["walk_refs_per_1k"] / 10


def test_no_process_no_figures():
    got = steady_window(small_mm(), accesses=100)
    assert got == {"accesses": 0, "tlb_misses_per_1k": None, "walk_refs_per_1k": None}
