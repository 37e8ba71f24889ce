"""Reclaim: swap-out through the PTE, refaults, file eviction, pressure counters."""

from mmcore.constants import ALLOC_DEFAULT, MT, AllocFlag
from mmcore.pagetables.pte import PTE_PRESENT, PTE_SWAP
from tests.mmcore.machines import fragment, small_mm


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


def test_pinned_anon_pages_are_activated_not_swapped():
    mm = small_mm(4096)
    p = mm.spawn()
    va = p.mmap(256 << 12, "none")
    pfns = [p.fault(va + (i << 12)) for i in range(256)]
    pinned = set(pfns[::2])
    mm.pinned |= pinned
    mm.reclaim.shrink_node(0, 64, MT.MOVABLE)  # young: all activated
    mm.reclaim.shrink_active(0, 1, 256)
    got = mm.reclaim.shrink_node(0, 256, MT.MOVABLE)
    assert got == 128 and p.swapped == 128 and mm.stats.swapouts == 128
    assert mm.reclaim.unmap_fail == 128
    assert mm.pinned == pinned  # every pin kept, each page still mapped
    for i, pfn in enumerate(pfns):
        e = mm.mem.read(p.pt.get_pte(va + (i << 12)))
        assert bool(e & PTE_PRESENT) == (pfn in pinned)
        if pfn in pinned:
            assert mm.frames.lru[pfn] - 1 == 1  # ACTIVE_ANON of node 0
    assert mm.metrics()["reclaim"]["pinned_kept"] == 128
    mm.check()


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


def spill_file(mm, pages: int):
    """A file read until its pages fill the movable zone and spill into the
    normal one (oldest pages in the movable zone)."""
    f = mm.new_file(pages)
    for i in range(pages):
        assert f.read(i) >= 0
    return f


def zone_pages(mm, f, kind: int) -> int:
    return sum(1 for p in f.pages if p >= 0 and mm.phys.zone_of(p).kind == kind)


def test_unmovable_reclaim_takes_only_normal_zone_pages():
    mm = small_mm(4096, movable=2048)
    f = spill_file(mm, 3000)
    normal, movable = zone_pages(mm, f, 0), zone_pages(mm, f, 1)
    assert normal > 64 and movable > 1000
    got = mm.reclaim.shrink_node(0, 32, MT.UNMOVABLE)
    assert got == 32
    assert zone_pages(mm, f, 0) == normal - 32 and zone_pages(mm, f, 1) == movable
    # the oldest pages (movable zone) were passed over, not scanned
    assert mm.reclaim.skipped > 0 and mm.reclaim.scanned[0] == 32
    mm.check()
    # the skipped pages went back to the head (as isolate_lru_folios splices
    # them), so the next movable pass meets the normal zone's pages first
    tail = mm.lru.tail[2]
    assert mm.phys.zone_of(tail).kind == 0
    got = mm.reclaim.shrink_node(0, 32, MT.MOVABLE)
    assert got == 32 and f.cached == 3000 - 64
    assert tail not in f.pages
    mm.check()


def test_no_eligible_page_means_no_scan_but_pressure_for_the_resize_hook():
    mm = small_mm(4096, movable=2048)
    f = spill_file(mm, 1500)
    assert zone_pages(mm, f, 0) == 0
    r = mm.reclaim
    assert r.shrink_node(0, 32, MT.UNMOVABLE) == 0
    assert f.cached == 1500 and r.skipped == 0
    assert r.scanned[0] == 0 and r.window == [0, 0]  # a pass scans only what there is
    seen = []
    mm.after_reclaim = lambda nid: seen.append(list(r.window)) or r.window.__init__([0, 0])
    mm.pa.stats.slow += 1  # an allocation enters its slow path
    r.direct(0, 2, MT.UNMOVABLE)
    r.direct(0, 2, MT.UNMOVABLE)  # its retry: the same shortfall, not counted again
    assert seen == [[128, 0], [0, 0]] and r.unscannable == 128
    mm.pa.stats.slow += 1  # the next allocation that finds nothing counts its own
    r.direct(0, 0, MT.UNMOVABLE)
    assert seen[-1] == [32, 0] and r.unscannable == 160
    normal = mm.phys.zones[0]
    free, normal.free_pages = normal.free_pages, 0  # the normal zone below its watermarks
    r.wake(0, 0, MT.UNMOVABLE)
    assert r.pending
    r.run_kswapd()  # kswapd finds nothing either, and adds nothing
    normal.free_pages = free
    assert seen[-1] == [0, 0] and r.scanned[0] == 0 and r.kswapd_runs == 1


def test_kswapd_balances_for_the_highest_zone_its_wakers_need():
    mm = small_mm(4096, movable=2048)
    r = mm.reclaim
    normal, movable = mm.phys.nodes[0].zones
    normal.free_pages = movable.free_pages = 0  # nothing balanced
    r.wake(0, 0, MT.UNMOVABLE)
    assert r.pending[0] == [0, 0, MT.UNMOVABLE]
    r.wake(0, 2, MT.MOVABLE)
    assert r.pending[0] == [2, 1, MT.UNMOVABLE]  # scans still count for the first waker
    # pgdat_balanced: any eligible zone above high + its reserve for the index
    normal.free_pages, movable.free_pages = 0, movable.wmark_high + 1
    assert r.pgdat_balanced(0, 1) and not r.pgdat_balanced(0, 0)
    normal.free_pages = normal.wmark_high + normal.lowmem_reserve[1]
    movable.free_pages = 0
    assert r.pgdat_balanced(0, 0) and not r.pgdat_balanced(0, 1)


def test_pgdat_balanced_for_an_order_needs_a_free_block_of_it():
    mm = small_mm(4096)
    r = mm.reclaim
    z = mm.phys.zones[0]
    assert r.pgdat_balanced(0, 1, 9)
    fragment(mm)  # every pageblock holds an unmovable page: no free order-9 block
    assert z.free_pages > z.wmark_high and not any(z.nr_free[9:])
    assert r.pgdat_balanced(0, 1, 0) and not r.pgdat_balanced(0, 1, 9)


def test_wakeup_kswapd_on_a_balanced_node_wakes_kcompactd_for_light_allocations():
    mm = small_mm(4096)
    fragment(mm)
    r, k = mm.reclaim, mm.compaction.kcompactd
    r.wake(0, 0, MT.MOVABLE, AllocFlag.KSWAPD)  # order 0 balanced: nothing to do
    assert not r.pending and k.wakeups == [0] and r.balanced_wakeups == 1
    r.wake(0, 9, MT.MOVABLE, ALLOC_DEFAULT)  # not balanced for order 9: kswapd
    assert r.pending[0] == [9, 1, MT.MOVABLE] and k.wakeups == [0]
    mm.background()
    # kswapd had nothing to reclaim, went to sleep order-0 balanced, and woke
    # kcompactd for order 9, which ran in the same tick
    assert r.high_order_runs == 1 and k.wakeups == [1] and k.runs == [1]
    mm.check()


def test_kswapd_drops_to_order_0_after_reclaiming_compact_gap():
    mm = small_mm(8192)
    fragment(mm)  # no order-9 block can come back, whatever reclaim frees
    z = mm.phys.zones[0]
    f = mm.new_file(8192)
    i = 0
    while z.free_pages >= z.wmark_high:
        assert f.read(i) >= 0
        i += 1
    r = mm.reclaim
    r.wake(0, 9, MT.MOVABLE)
    assert r.pending[0] == [9, 1, MT.MOVABLE]
    r.run_kswapd()
    # order 9 never balances: after compact_gap(9) pages kswapd went on for
    # order 0, balanced it and went to sleep
    assert r.high_order_runs == 1 and r.order_drops == 1
    assert r.reclaimed >= 2 << 9 and r.pgdat_balanced(0, 1, 0)
    mm.check()


def test_zone_resize_moves_per_zone_lru_counts():
    mm = small_mm(4096, movable=2048)
    spill_file(mm, 1500)
    assert mm.resize_zone(0, 2) == 2  # the lowest movable pageblocks join normal
    mm.check()  # per-zone LRU counts agree with the lists
    assert mm.lru.eligible(0, 2, 0)[1] > 0
