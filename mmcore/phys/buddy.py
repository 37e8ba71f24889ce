"""The buddy allocator proper: free lists per order and migratetype,
merging on free, splitting on allocation, and Linux's fallback with
pageblock stealing (``__rmqueue_fallback``, ``find_suitable_fallback``,
``can_steal_fallback``, ``steal_suitable_fallback``, ``move_freepages_block``).

Follows the pre-6.9 kernel: a merged block goes on the free list of the
freed page's pageblock type, and blocks of any type merge.  Differences from
Linux: no ALLOC_NOFRAGMENT pass (it only applies when a lower zone such as
DMA32 exists), no watermark boost, no free-page shuffling or tail placement;
blocks never straddle zones because merging checks the zone's pfn range
(Linux checks page_zone_id, the same thing for aligned zones).  Because our
MAX_ORDER is 18, a fallback first cuts a block larger than Linux's largest
(order 10) down to order 10 on its own list, then steals that: the claim
covers at most two pageblocks, as in Linux.

Not Linux: in a zone for which ``confine(zone)`` holds (the unmovable region
of a node whose boundary a Contiguitas ``zone_resize`` program moves), an
unmovable or reclaimable fallback takes the free pageblock farthest from
the boundary (the lowest pfn) instead of the largest free block, or, when no
whole pageblock is free, the lowest free block large enough.  Contiguitas
confines unmovable memory to one end of its region so that the region can
shrink; Linux's choice of the largest block would put it in the largest free
run, which in a freshly grown region is the run next to the boundary, and
one long-lived page there keeps the whole growth.
"""

from __future__ import annotations

from collections.abc import Callable

from mmcore.constants import (
    FALLBACKS,
    MAX_ORDER,
    MT,
    NR_MT,
    NR_ORDERS,
    PAGEBLOCK_ORDER,
    PAGEBLOCK_PAGES,
    FrameState,
)
from mmcore.phys.native import compiled
from mmcore.phys.physmem import PhysMem, Zone

# Linux's MAX_PAGE_ORDER: a fallback steals at most a block of this order, so
# that our larger blocks (up to 1 GiB) do not flip 512 pageblocks at once.
FALLBACK_MAX_ORDER = 10
# plain ints: the frame-state array takes them without an enum conversion
BUDDY, TAIL, ALLOC, PCP = (int(s) for s in (FrameState.BUDDY, FrameState.TAIL, FrameState.ALLOC,
                                            FrameState.PCP))


class Buddy:
    """Free-list primitives over the zones of a :class:`PhysMem`."""

    def __init__(self, phys: PhysMem) -> None:
        self.phys = phys
        fr = phys.frames
        self.st, self.ordr, self.fmt = fr.state, fr.order, fr.mt
        self.nxt, self.prv, self.pb_mt = fr.nxt, fr.prv, fr.pb_mt
        self.steals = 0  # fallbacks that took a block of another migratetype
        self.claims = 0  # pageblocks whose type changed on a fallback
        # zones whose unmovable fallbacks take the free pageblock farthest from
        # the region boundary (set by the MM core for a Contiguitas region)
        self.confine: Callable[[Zone], bool] = lambda z: False
        self.confined = 0  # fallbacks placed by that rule
        # the compiled list steps (mmcore.phys.native), None: the Python ones
        self.native = compiled()
        self.native_free = self.native.free if self.native is not None else None

    # --- list primitives -------------------------------------------------
    def _add(self, z: Zone, pfn: int, order: int, mt: int) -> None:
        i = order * NR_MT + mt
        head = z.heads[i]
        self.st[pfn] = BUDDY
        self.ordr[pfn] = order
        self.fmt[pfn] = mt
        self.nxt[pfn] = head
        self.prv[pfn] = -1
        if head >= 0:
            self.prv[head] = pfn
        z.heads[i] = pfn
        z.counts[i] += 1
        z.nr_free[order] += 1
        z.free_pages += 1 << order

    def _del(self, z: Zone, pfn: int) -> None:
        order = self.ordr[pfn]
        i = order * NR_MT + self.fmt[pfn]
        n, p = self.nxt[pfn], self.prv[pfn]
        if p >= 0:
            self.nxt[p] = n
        else:
            z.heads[i] = n
        if n >= 0:
            self.prv[n] = p
        self.st[pfn] = TAIL
        z.counts[i] -= 1
        z.nr_free[order] -= 1
        z.free_pages -= 1 << order

    def _move(self, z: Zone, pfn: int, mt: int) -> None:
        order = self.ordr[pfn]
        self._del(z, pfn)
        self._add(z, pfn, order, mt)

    # --- free ------------------------------------------------------------
    def free_one(self, z: Zone, pfn: int, order: int, mt: int) -> None:
        """``__free_one_page``: merge with free buddies, then list the block
        (compiled where :mod:`mmcore.phys.native` is, the same steps)."""
        free = self.native_free
        if free is not None:
            free(z.desc, pfn, order, mt, z.start, z.end)
            z.free_pages += 1 << order  # each merge takes a buddy off as it grows the block
            return
        st, ordr, start, end = self.st, self.ordr, z.start, z.end
        while order < MAX_ORDER:
            buddy = pfn ^ (1 << order)
            if buddy < start or buddy >= end or st[buddy] != BUDDY or ordr[buddy] != order:
                break
            self._del(z, buddy)
            pfn &= ~(1 << order)
            order += 1
        self._add(z, pfn, order, mt)

    def free_range(self, lo: int, hi: int) -> None:
        """Free frames [lo, hi) in the largest aligned blocks that stay
        inside one zone each (used when zone boundaries move)."""
        phys = self.phys
        pfn = lo
        while pfn < hi:
            z = phys.zone_of(pfn)
            limit = min(hi, z.end)
            order = min(MAX_ORDER, (pfn & -pfn).bit_length() - 1 if pfn else MAX_ORDER)
            while pfn + (1 << order) > limit:
                order -= 1
            self.free_one(z, pfn, order, self.pb_mt[pfn >> PAGEBLOCK_ORDER])
            pfn += 1 << order

    def take_range(self, z: Zone, lo: int, hi: int) -> list[tuple[int, int]]:
        """Remove from ``z``'s free lists every free block overlapping
        [lo, hi); return them as (start, end) ranges (not yet freed again)."""
        taken: list[tuple[int, int]] = []
        for order in range(NR_ORDERS):
            for mt in range(NR_MT):
                pfn = z.heads[order * NR_MT + mt]
                while pfn >= 0:
                    nxt = self.nxt[pfn]
                    if pfn < hi and pfn + (1 << order) > lo:
                        self._del(z, pfn)
                        taken.append((pfn, pfn + (1 << order)))
                    pfn = nxt
        return taken

    # --- allocate --------------------------------------------------------
    def expand(self, z: Zone, pfn: int, low: int, high: int, mt: int) -> None:
        """Split a block of order ``high`` down to ``low``, listing the upper halves."""
        while high > low:
            high -= 1
            self._add(z, pfn + (1 << high), high, mt)

    def rmqueue_smallest(self, z: Zone, order: int, mt: int) -> int:
        heads = z.heads
        for o in range(order, NR_ORDERS):
            pfn = heads[o * NR_MT + mt]
            if pfn >= 0:
                self._del(z, pfn)
                if o > order:
                    self.expand(z, pfn, order, o, mt)
                return pfn
        return -1

    def rmqueue(self, z: Zone, order: int, mt: int) -> int:
        """``__rmqueue``: the requested type first, then a fallback steal."""
        pfn = self.rmqueue_smallest(z, order, mt)
        if pfn < 0 and self.rmqueue_fallback(z, order, mt):
            pfn = self.rmqueue_smallest(z, order, mt)
        return pfn

    # --- fallback and stealing ------------------------------------------
    @staticmethod
    def can_steal_fallback(order: int, start_mt: int) -> bool:
        if order >= PAGEBLOCK_ORDER:
            return True
        return order >= PAGEBLOCK_ORDER // 2 or start_mt in (MT.RECLAIMABLE, MT.UNMOVABLE)

    def find_suitable_fallback(self, z: Zone, order: int, mt: int) -> tuple[int, bool]:
        """(fallback migratetype or -1, can_steal) for free blocks of ``order``."""
        if not z.nr_free[order]:
            return -1, False
        for fmt in FALLBACKS[mt]:
            if z.counts[order * NR_MT + fmt]:
                return fmt, self.can_steal_fallback(order, mt)
        return -1, False

    def lowest_fallback_block(self, z: Zone, order: int, mt: int) -> int:
        """The lowest-pfn free block of a fallback migratetype of ``mt``: of
        order >= max(order, pageblock_order) (a whole pageblock to claim) if
        there is one, else of order >= ``order``; -1 if none."""
        nxt = self.nxt
        for low in (max(order, PAGEBLOCK_ORDER), order):
            best = -1
            for cur in range(low, NR_ORDERS):
                if not z.nr_free[cur]:
                    continue
                for fmt in FALLBACKS[mt]:
                    pfn = z.heads[cur * NR_MT + fmt]
                    while pfn >= 0:
                        if best < 0 or pfn < best:
                            best = pfn
                        pfn = nxt[pfn]
            if best >= 0 or low == order:
                return best
        return -1

    def rmqueue_fallback(self, z: Zone, order: int, mt: int) -> bool:
        if mt != MT.MOVABLE and self.confine(z):
            pfn = self.lowest_fallback_block(z, order, mt)
            if pfn >= 0:
                cur = self.ordr[pfn]
                if cur > FALLBACK_MAX_ORDER:  # the lowest Linux-sized block of it
                    fmt = self.fmt[pfn]
                    self._del(z, pfn)
                    self.expand(z, pfn, FALLBACK_MAX_ORDER, cur, fmt)
                    self._add(z, pfn, FALLBACK_MAX_ORDER, fmt)
                self.steal_suitable_fallback(z, pfn, mt, True)
                self.steals += 1
                self.confined += 1
                return True
        for cur in range(MAX_ORDER, order - 1, -1):
            fmt, can_steal = self.find_suitable_fallback(z, cur, mt)
            if fmt < 0:
                continue
            if not can_steal and mt == MT.MOVABLE and cur > order:
                # steal the smallest block instead: no permanent fragmentation
                for cur in range(order, NR_ORDERS):
                    fmt, can_steal = self.find_suitable_fallback(z, cur, mt)
                    if fmt >= 0:
                        break
            pfn = z.heads[cur * NR_MT + fmt]
            if cur > FALLBACK_MAX_ORDER:  # cut to the size Linux's largest block has
                self._del(z, pfn)
                self.expand(z, pfn, FALLBACK_MAX_ORDER, cur, fmt)
                self._add(z, pfn, FALLBACK_MAX_ORDER, fmt)
            self.steal_suitable_fallback(z, pfn, mt, can_steal)
            self.steals += 1
            return True
        return False

    def _set_pb_mt(self, lo_pb: int, hi_pb: int, mt: int) -> None:
        for pb in range(lo_pb, hi_pb):
            if self.pb_mt[pb] != mt:
                self.pb_mt[pb] = mt
                self.claims += 1

    def steal_suitable_fallback(self, z: Zone, pfn: int, start_mt: int, whole_block: bool) -> None:
        order = self.ordr[pfn]
        pb = pfn >> PAGEBLOCK_ORDER
        old = self.pb_mt[pb]
        if order >= PAGEBLOCK_ORDER:
            self._set_pb_mt(pb, pb + (1 << (order - PAGEBLOCK_ORDER)), start_mt)
            self._move(z, pfn, start_mt)
            return
        if not whole_block:
            self._move(z, pfn, start_mt)
            return
        free_pages, movable_pages = self.move_freepages_block(z, pfn, start_mt)
        if start_mt == MT.MOVABLE:
            alike = movable_pages
        elif old == MT.MOVABLE:
            alike = PAGEBLOCK_PAGES - (free_pages + movable_pages)
        else:
            alike = 0
        if free_pages + alike >= PAGEBLOCK_PAGES // 2:
            self._set_pb_mt(pb, pb + 1, start_mt)

    def move_freepages_block(self, z: Zone, pfn: int, mt: int) -> tuple[int, int]:
        """Move every free block of ``pfn``'s pageblock to ``mt``'s lists;
        return (free pages moved, movable pages counted)."""
        st, ordr, amt = self.st, self.ordr, self.fmt
        p = pfn & ~(PAGEBLOCK_PAGES - 1)
        end = p + PAGEBLOCK_PAGES
        free = movable = 0
        while p < end:
            s = st[p]
            if s == BUDDY:
                if amt[p] != mt:
                    self._move(z, p, mt)
                free += 1 << ordr[p]
                p += 1 << ordr[p]
            elif s == ALLOC:
                if amt[p] == MT.MOVABLE:
                    movable += 1 << ordr[p]
                p += 1 << ordr[p]
            else:
                p += 1
        return free, movable
