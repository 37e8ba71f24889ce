"""Compaction control as mm/compaction.c decides whether and how to compact:
``compaction_suitable`` (the order-0 watermark plus ``compact_gap`` and the
fragmentation index against ``sysctl_extfrag_threshold``), deferral
(``defer_compaction``, ``compaction_deferred``, ``compaction_defer_reset``,
``compaction_restarting``) and the migrate modes.

The per-zone deferral state lives here, keyed by zone id, because the
zone record holds only what the allocator needs.  Nothing here scans or
migrates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from mmcore.constants import COSTLY_ORDER, NR_ORDERS
from mmcore.phys.fragmentation import fragmentation_index
from mmcore.phys.physmem import Zone

COMPACT_MAX_DEFER_SHIFT = 6
EXTFRAG_THRESHOLD = 500  # sysctl_extfrag_threshold default


class Mode(IntEnum):
    """``enum migrate_mode`` as compaction uses it."""

    ASYNC = 0  # direct compaction's first try: same-type source blocks, quick give-up
    SYNC_LIGHT = 1  # direct compaction's retries, kcompactd
    SYNC = 2  # alloc_contig_range and the lowest compaction priority: ignores skip bits


class Result(IntEnum):
    """``enum compact_result`` (the values the model produces)."""

    SKIPPED = 0  # compaction_suitable said no: reclaim first
    DEFERRED = 1
    CONTENDED = 2  # async gave up on a page it could not move
    COMPLETE = 3  # scanners met without a block of the order
    SUCCESS = 4


@dataclass
class DeferState:
    considered: int = 0  # compact_considered
    shift: int = 0  # compact_defer_shift
    order_failed: int = NR_ORDERS  # compact_order_failed


def compact_gap(order: int) -> int:
    """Free pages compaction needs beyond the watermark: room for the
    isolated pages and their targets (``2UL << order``)."""
    return 2 << order


def compaction_suitable(z: Zone, order: int, classzone: int, threshold: int) -> bool:
    """``compaction_suitable``: enough free order-0 pages to migrate into,
    and, for costly orders, a failure that fragmentation (not lack of memory)
    explains: fragmentation index above ``threshold`` (or -1000: it would
    succeed already)."""
    mark = z.wmark_low if order > COSTLY_ORDER else z.wmark_min
    mark += compact_gap(order)
    if z.free_pages <= mark + z.lowmem_reserve[classzone]:
        return False
    if order > COSTLY_ORDER:
        fragindex = fragmentation_index(z.nr_free, order)
        if 0 <= fragindex <= threshold:
            return False
    return True


def defer_compaction(d: DeferState, order: int) -> None:
    d.considered = 0
    d.shift = min(d.shift + 1, COMPACT_MAX_DEFER_SHIFT)
    d.order_failed = min(d.order_failed, order)


def compaction_deferred(d: DeferState, order: int) -> bool:
    """True while the zone sits out ``1 << compact_defer_shift`` attempts."""
    if order < d.order_failed:
        return False
    limit = 1 << d.shift
    d.considered += 1
    if d.considered >= limit:
        d.considered = limit
        return False
    return True


def compaction_defer_reset(d: DeferState, order: int, alloc_success: bool) -> None:
    if alloc_success:
        d.considered = d.shift = 0
    if order >= d.order_failed:
        d.order_failed = order + 1


def compaction_restarting(d: DeferState, order: int) -> bool:
    """The deferral ran its full course: the next run starts anew (skip bits reset)."""
    if order < d.order_failed:
        return False
    return d.shift == COMPACT_MAX_DEFER_SHIFT and d.considered >= 1 << d.shift
