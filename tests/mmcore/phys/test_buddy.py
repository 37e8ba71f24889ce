"""Buddy split/merge, the fallback table and the pageblock claiming rules."""

from mmcore.constants import FALLBACKS, MT, NR_MT, PAGEBLOCK_ORDER
from mmcore.phys.buddy import FALLBACK_MAX_ORDER
from mmcore.phys.page_alloc import PageAllocator
from mmcore.phys.physmem import MachineSpec, NodeSpec, PhysMem


def allocator(pages: int = 1024) -> PageAllocator:
    return PageAllocator(PhysMem(MachineSpec((NodeSpec(pages),))))


def empty_zone(pa: PageAllocator):
    z = pa.zones[0]
    pa.take_range(z, z.start, z.end)
    return z


def test_initial_free_lists_are_largest_aligned_blocks():
    pa = allocator(1024)
    z = pa.zones[0]
    assert z.nr_free[10] == 1 and sum(z.nr_free) == 1
    assert z.free_pages == 1024
    assert z.heads[10 * NR_MT + MT.MOVABLE] == 0


def test_split_lists_the_upper_halves_then_merge_restores():
    pa = allocator(1024)
    z = pa.zones[0]
    pfn = pa.rmqueue(z, 0, MT.MOVABLE)
    assert pfn == 0
    # orders 0..9 each hold one block, at pfn 1 << order
    assert list(z.nr_free[:10]) == [1] * 10 and z.nr_free[10] == 0
    for order in range(10):
        assert z.heads[order * NR_MT + MT.MOVABLE] == 1 << order
    assert z.free_pages == 1023
    pa.free_one(z, 0, 0, MT.MOVABLE)
    assert z.nr_free[10] == 1 and sum(z.nr_free) == 1


def test_merge_stops_at_an_allocated_buddy():
    pa = allocator(1024)
    z = pa.zones[0]
    a = pa.rmqueue(z, 0, MT.MOVABLE)
    b = pa.rmqueue(z, 0, MT.MOVABLE)
    assert (a, b) == (0, 1)
    pa.free_one(z, a, 0, MT.MOVABLE)
    assert z.nr_free[0] == 1  # buddy 1 is still allocated: no merge
    pa.free_one(z, b, 0, MT.MOVABLE)
    assert z.nr_free[10] == 1 and z.free_pages == 1024


def test_fallback_table_is_linux():
    assert FALLBACKS[MT.UNMOVABLE] == (MT.RECLAIMABLE, MT.MOVABLE)
    assert FALLBACKS[MT.MOVABLE] == (MT.RECLAIMABLE, MT.UNMOVABLE)
    assert FALLBACKS[MT.RECLAIMABLE] == (MT.UNMOVABLE, MT.MOVABLE)


def test_unmovable_falls_back_to_reclaimable_before_movable():
    pa = allocator(1024)
    z = empty_zone(pa)
    pa.pb_mt[0], pa.pb_mt[1] = MT.RECLAIMABLE, MT.MOVABLE
    pa._add(z, 0, 9, MT.RECLAIMABLE)
    pa._add(z, 512, 9, MT.MOVABLE)
    assert pa.rmqueue(z, 0, MT.UNMOVABLE) == 0
    assert pa.pb_mt[0] == MT.UNMOVABLE  # whole pageblock claimed (order >= pageblock order)
    assert pa.pb_mt[1] == MT.MOVABLE


def test_can_steal_fallback_thresholds():
    assert not PageAllocator.can_steal_fallback(3, MT.MOVABLE)
    assert PageAllocator.can_steal_fallback(4, MT.MOVABLE)  # pageblock_order / 2
    assert PageAllocator.can_steal_fallback(0, MT.UNMOVABLE)
    assert PageAllocator.can_steal_fallback(0, MT.RECLAIMABLE)
    assert PageAllocator.can_steal_fallback(9, MT.MOVABLE)


def claim_setup(free_order: int, free_at: int, others: list[tuple[int, int, int]]) -> PageAllocator:
    """Pageblock 1 fully allocated; pageblock 0 holds ``others`` allocations
    (pfn, order, mt) and one free block at ``free_at``."""
    pa = allocator(1024)
    z = empty_zone(pa)
    pa.prep(512, 9, MT.MOVABLE, 99, 0)
    for pfn, order, mt in others:
        pa.prep(pfn, order, mt, 99, 0)
    pa._add(z, free_at, free_order, MT.MOVABLE)
    return pa


def test_claim_when_half_the_block_is_free():
    pa = claim_setup(8, 256, [(0, 8, MT.MOVABLE)])
    assert pa.rmqueue(pa.zones[0], 0, MT.UNMOVABLE) == 256
    assert pa.pb_mt[0] == MT.UNMOVABLE  # free 256 + alike 0 >= 256


def test_no_claim_when_less_than_half_free_or_alike():
    pa = claim_setup(7, 384, [(0, 8, MT.MOVABLE), (256, 7, MT.MOVABLE)])
    assert pa.rmqueue(pa.zones[0], 0, MT.UNMOVABLE) == 384  # stolen page, block kept
    assert pa.pb_mt[0] == MT.MOVABLE  # free 128 + alike 0 < 256


def test_claim_counts_non_movable_pages_as_alike():
    pa = claim_setup(7, 384, [(0, 8, MT.MOVABLE), (256, 7, MT.UNMOVABLE)])
    assert pa.rmqueue(pa.zones[0], 0, MT.UNMOVABLE) == 384
    assert pa.pb_mt[0] == MT.UNMOVABLE  # free 128 + alike (512 - 128 - 256) = 256


def movable_from_unmovable_block(free_order: int) -> PageAllocator:
    pa = allocator(1024)
    z = empty_zone(pa)
    pa.pb_mt[0] = pa.pb_mt[1] = MT.UNMOVABLE
    pa.prep(0, 9, MT.UNMOVABLE, 99, 0)
    pa.prep(512, 8, MT.UNMOVABLE, 99, 0)
    pa._add(z, 768, free_order, MT.UNMOVABLE)
    assert pa.rmqueue(z, 0, MT.MOVABLE) == 768
    return pa


def test_movable_fallback_below_half_pageblock_order_does_not_claim():
    pa = movable_from_unmovable_block(3)  # can_steal_fallback(3, MOVABLE) is False
    assert pa.pb_mt[1] == MT.UNMOVABLE


def test_movable_fallback_claims_with_half_the_block_free():
    pa = movable_from_unmovable_block(8)  # free 256 + movable 0 >= 256
    assert pa.pb_mt[1] == MT.MOVABLE


def test_fallback_cuts_huge_blocks_to_linux_max_order():
    pa = allocator(1 << 18)
    z = pa.zones[0]
    assert z.nr_free[18] == 1
    pa.rmqueue(z, 0, MT.UNMOVABLE)
    changed = sum(1 for pb in range(len(pa.pb_mt)) if pa.pb_mt[pb] == MT.UNMOVABLE)
    assert changed == 1 << (FALLBACK_MAX_ORDER - PAGEBLOCK_ORDER)


def scattered_free(pa: PageAllocator):
    """Free movable blocks: an order-12 block high up, one pageblock low down
    and order-3 pieces in between (the largest block is the highest)."""
    z = empty_zone(pa)
    pa.free_one(z, 12288, 12, MT.MOVABLE)
    pa.free_one(z, 2048, PAGEBLOCK_ORDER, MT.MOVABLE)
    for pfn in (4096, 8192):
        pa.free_one(z, pfn, 3, MT.MOVABLE)
    return z


def test_unconfined_fallback_takes_the_largest_block():
    pa = allocator(1 << 14)
    z = scattered_free(pa)
    assert pa.rmqueue(z, 0, MT.UNMOVABLE) >= 12288 and pa.confined == 0


def test_confined_fallback_takes_the_pageblock_farthest_from_the_boundary():
    pa = allocator(1 << 14)
    z = scattered_free(pa)
    pa.confine = lambda zone: True
    pfn = pa.rmqueue(z, 0, MT.UNMOVABLE)
    assert 2048 <= pfn < 2048 + (1 << PAGEBLOCK_ORDER) and pa.confined == 1
    assert pa.pb_mt[2048 >> PAGEBLOCK_ORDER] == MT.UNMOVABLE
    assert pa.pb_mt[12288 >> PAGEBLOCK_ORDER] == MT.MOVABLE
    assert pa.rmqueue(z, 0, MT.MOVABLE) >= 0 and pa.confined == 1  # movable: Linux's rule


def test_confined_fallback_without_a_free_pageblock_takes_the_lowest_block():
    pa = allocator(1 << 14)
    z = empty_zone(pa)
    pa.confine = lambda zone: True
    for pfn, order in ((9000, 3), (5000, 2), (12000, 5)):
        pa.free_one(z, pfn, order, MT.MOVABLE)
    assert 5000 <= pa.rmqueue(z, 0, MT.RECLAIMABLE) < 5004
