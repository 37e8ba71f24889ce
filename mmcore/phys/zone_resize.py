"""Moving a node's NORMAL/MOVABLE boundary at run time, in pageblocks.

Growing the normal zone hands the lowest pageblocks of the movable zone to
it: allocated pages stay where they are (movable pages are welcome in a
normal zone), free blocks are taken off the movable zone's lists and freed
again into the normal zone.  Shrinking the normal zone hands its top
pageblocks to the movable zone, but only those that hold no unmovable or
reclaimable allocation (a movable zone takes only movable pages); it stops
at the first pageblock that does, so it may move fewer pageblocks than
asked.  The pageblocks asked for but kept are marked movable, free pages
included, as memory offlining isolates the blocks it empties: unmovable
allocations avoid them unless nothing else is free, the pages there drain
as they are freed, and a later shrink gives them back.  Watermarks and
pcp sizes are recomputed afterwards, as after memory hotplug.

Linux cannot move this boundary at run time (``movablecore=`` is fixed at
boot; memory hotplug onlines whole memory blocks); this is the mechanism
Contiguitas adds, at pageblock granularity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import MT, PAGEBLOCK_ORDER, PAGEBLOCK_PAGES, FrameState
from mmcore.phys.physmem import pageblocks_covered

if TYPE_CHECKING:
    from mmcore.mm import MM
    from mmcore.phys.physmem import Zone

MIN_NORMAL_PAGEBLOCKS = 1


def pinned_pageblocks(mm: MM, lo: int, hi: int) -> np.ndarray:
    """Boolean per pageblock of [lo, hi): holds a non-movable allocation."""
    fr = mm.frames
    st, mt, order = fr.view("state"), fr.view("mt"), fr.view("order")
    heads = np.flatnonzero((st[lo:hi] == FrameState.ALLOC) & (mt[lo:hi] != MT.MOVABLE))
    return pageblocks_covered(heads, order[lo:hi][heads], (hi - lo) >> PAGEBLOCK_ORDER)


def drain_pageblocks(mm: MM, zone: Zone, lo: int, hi: int) -> None:
    """Mark the pageblocks of [lo, hi) movable and list their free pages as
    movable: unmovable and reclaimable allocations stop landing there (unless
    nothing else is free), the ones there drain as they are freed, and a
    later shrink can take the blocks."""
    mm.pa.drain_all([zone])
    for pfn in range(lo, hi, PAGEBLOCK_PAGES):
        mm.frames.pb_mt[pfn >> PAGEBLOCK_ORDER] = MT.MOVABLE
        mm.pa.move_freepages_block(zone, pfn, MT.MOVABLE)


def resize_normal_zone(mm: MM, nid: int, delta: int) -> int:
    """Grow (delta > 0) or shrink (delta < 0) the normal zone of ``nid`` by
    ``|delta|`` pageblocks; return the signed number actually moved."""
    node = mm.phys.nodes[nid]
    normal, movable = node.normal, node.movable
    pa, fr = mm.pa, mm.frames
    b = normal.end
    if delta > 0:
        n = min(delta, movable.managed >> PAGEBLOCK_ORDER)
        lo, hi = b, b + n * PAGEBLOCK_PAGES
        src, dst = movable, normal
    elif delta < 0:
        room = (normal.managed >> PAGEBLOCK_ORDER) - MIN_NORMAL_PAGEBLOCKS
        want = min(-delta, max(room, 0))
        pinned = pinned_pageblocks(mm, b - want * PAGEBLOCK_PAGES, b) if want else np.zeros(0, bool)
        n = 0
        while n < want and not pinned[want - 1 - n]:
            n += 1
        if n < want:
            drain_pageblocks(mm, normal, b - want * PAGEBLOCK_PAGES, b - n * PAGEBLOCK_PAGES)
        lo, hi = b - n * PAGEBLOCK_PAGES, b
        src, dst = normal, movable
    else:
        return 0
    if n == 0:
        return 0
    pa.drain_all([src, dst])
    taken = pa.take_range(src, lo, hi)
    if delta > 0:
        movable.start = normal.end = hi
    else:
        movable.start = normal.end = lo
        for pb in range(lo >> PAGEBLOCK_ORDER, hi >> PAGEBLOCK_ORDER):
            fr.pb_mt[pb] = MT.MOVABLE
    fr.pb_zone[lo >> PAGEBLOCK_ORDER : hi >> PAGEBLOCK_ORDER] = bytes([dst.zid]) * n
    mm.lru.rezone(lo, hi, src.zid, dst.zid)
    # highest first: the lowest blocks end up at the heads of the free lists,
    # so a grown region fills from its old boundary up and its top stays free
    # longest (what a later shrink can give back)
    for start, end in sorted(taken, reverse=True):
        pa.free_range(start, end)
    pa.setup_watermarks()
    mm.stats.zone_resizes += 1
    mm.stats.pageblocks_moved += n
    return n if delta > 0 else -n
