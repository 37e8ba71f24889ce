"""Fixed facts of the simulated machine: page and block sizes, migratetypes,
the buddy fallback table, frame states and allocation flags.

Mirrors include/linux/mmzone.h and mm/page_alloc.c.  Differences from Linux:
only the three per-cpu-list migratetypes (UNMOVABLE, MOVABLE, RECLAIMABLE)
exist; HIGHATOMIC, CMA and ISOLATE are left out because no modelled workload
needs them (zone resizing takes its pageblocks off the free lists directly).
MAX_ORDER is 18 so that 1 GiB blocks exist in the buddy allocator (Linux
caps at order 10 and hands 1 GiB pages out through alloc_contig_range).
"""

from __future__ import annotations

from enum import IntEnum

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGEBLOCK_ORDER = 9
PAGEBLOCK_PAGES = 1 << PAGEBLOCK_ORDER
MAX_ORDER = 18  # largest order, inclusive (Linux's MAX_PAGE_ORDER)
NR_ORDERS = MAX_ORDER + 1
ORDER_4K, ORDER_2M, ORDER_1G = 0, 9, 18
PAGE_SIZE_ORDERS = (ORDER_4K, ORDER_2M, ORDER_1G)  # index = PTE size code
SWAP_CLUSTER_MAX = 32
COSTLY_ORDER = 3  # PAGE_ALLOC_COSTLY_ORDER


class MT(IntEnum):
    """Migratetypes, numbered as in Linux."""

    UNMOVABLE = 0
    MOVABLE = 1
    RECLAIMABLE = 2


NR_MT = 3

# mm/page_alloc.c: fallbacks[MIGRATE_TYPES][MIGRATE_PCPTYPES - 1].  Hot paths
# use plain ints: indexing with an IntEnum member costs a __index__ call.
FALLBACKS: tuple[tuple[int, int], ...] = (
    (int(MT.RECLAIMABLE), int(MT.MOVABLE)),  # UNMOVABLE
    (int(MT.RECLAIMABLE), int(MT.UNMOVABLE)),  # MOVABLE
    (int(MT.UNMOVABLE), int(MT.MOVABLE)),  # RECLAIMABLE
)


class FrameState(IntEnum):
    """What a frame is.  Only the first frame of a block (its head) carries a
    state other than TAIL; the block's size is ``1 << order[head]``."""

    TAIL = 0  # inside a block whose head is elsewhere
    BUDDY = 1  # head of a free block on a buddy free list
    PCP = 2  # free order-0 page held on a per-cpu list
    ALLOC = 3  # head of an allocated block


class ZoneKind(IntEnum):
    NORMAL = 0  # takes every migratetype
    MOVABLE = 1  # takes only movable allocations


NR_ZONE_KINDS = 2
# sysctl_lowmem_reserve_ratio: a zone keeps back managed pages of the zones
# above it / ratio from allocations that may use those zones (0: none)
LOWMEM_RESERVE_RATIO = (32, 0)


# gfp_zone by migratetype: the highest zone kind an allocation may use (its
# highest_zoneidx / classzone_idx): movable allocations (__GFP_MOVABLE) may
# use ZONE_MOVABLE, every other one stops at NORMAL.  Plain ints (hot path).
GFP_ZONE: tuple[int, ...] = tuple(
    int(ZoneKind.MOVABLE if mt == MT.MOVABLE else ZoneKind.NORMAL) for mt in MT
)


def gfp_zone(mt: int) -> int:
    """``gfp_zone``: the highest zone kind an allocation of ``mt`` may use."""
    return GFP_ZONE[mt]


class AllocFlag(IntEnum):
    """Bits of an allocation's flags (a tiny subset of gfp_t/alloc_flags)."""

    KSWAPD = 1  # may wake kswapd (__GFP_KSWAPD_RECLAIM)
    RECLAIM = 2  # may reclaim directly (__GFP_DIRECT_RECLAIM)
    COMPACT = 4  # may compact directly


ALLOC_DEFAULT = AllocFlag.KSWAPD | AllocFlag.RECLAIM | AllocFlag.COMPACT
ALLOC_LIGHT = 0  # GFP_TRANSHUGE_LIGHT: THP faults under defrag=madvise
