"""Reclaim: swap-out through the PTE, refaults, file eviction, pressure counters."""

from mmcore.constants import MT
from mmcore.pagetables.pte import PTE_PRESENT, PTE_SWAP
from tests.mmcore.machines import small_mm


def test_shrink_swaps_unreferenced_anon_and_refault_is_major():
    mm = small_mm(4096)
    p = mm.spawn()
    va = p.mmap(1 << 20, "none")
    for off in range(0, 1 << 20, 4096):
        p.fault(va + off)
    got = mm.reclaim.shrink_node(0, 64, MT.MOVABLE)
    # new pages are mapped young: the first pass only activates them
    assert got == 0 and mm.lru.count[1] > 0
    mm.reclaim.shrink_active(0, 1, 256)  # deactivate, clearing accessed bits
    got = mm.reclaim.shrink_node(0, 64, MT.MOVABLE)
    assert got == 64 and mm.stats.swapouts == 64 and p.swapped == 64
    swapped = [
        off for off in range(0, 1 << 20, 4096)
        if mm.mem.read(p.pt.get_pte(va + off)) & PTE_SWAP
    ]  # fmt: skip
    assert len(swapped) == 64
    mm.check()
    assert p.fault(va + swapped[0]) >= 0
    assert mm.stats.major_faults == 1 and mm.stats.swapins == 1
    assert mm.mem.read(p.pt.get_pte(va + swapped[0])) & PTE_PRESENT
    mm.check()
    assert mm.reclaim.scanned[1] > 0 and mm.reclaim.scanned[0] == 0


def test_file_pages_are_dropped_and_counted_for_unmovable_pressure():
    mm = small_mm(4096)
    f = mm.new_file(512)
    for i in range(512):
        f.read(i)
    got = mm.reclaim.shrink_node(0, 32, MT.UNMOVABLE)
    assert got == 32 and f.cached == 480
    assert mm.reclaim.scanned[0] == 32
    mm.check()


def test_two_touches_activate_a_file_page():
    mm = small_mm()
    f = mm.new_file(4)
    pfn = f.read(0)
    f.read(0)
    assert mm.frames.lru[pfn] - 1 == 3  # ACTIVE_FILE of node 0


def test_kswapd_balances_node_to_high_watermark():
    mm = small_mm(4096)
    f = mm.new_file(4096)
    for i in range(4096):
        if f.read(i) < 0:
            break
    mm.background()
    z = mm.phys.zones[0]
    assert z.free_pages >= z.wmark_high
    assert mm.reclaim.kswapd_runs >= 1
    mm.check()
