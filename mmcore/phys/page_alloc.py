"""The page allocator front end: zonelists, watermark checks, per-cpu page
lists and the allocation slow path (``get_page_from_freelist``,
``__alloc_pages_slowpath``, ``__alloc_pages_may_oom``, ``rmqueue_pcplist``,
``free_unref_page``).

Order-0 allocations and frees go through one pcp list per zone and
migratetype: a Python list popped and appended at its hot end, refilled
from and drained to the buddy lists ``batch`` pages at a time, as Linux's
pcp batch/high.  Every watermark check adds the zone's ``lowmem_reserve``
for the allocation's highest usable zone (``gfp_zone``), as
``__zone_watermark_ok`` does.  The slow path wakes kswapd for that zone
index, compacts (async on the first try, sync-light on later ones, as
``__alloc_pages_slowpath`` raises the compaction priority), reclaims
directly for it (``reclaim_idx``), and for an allocation that must succeed
(direct reclaim allowed, order at most ``PAGE_ALLOC_COSTLY_ORDER``) calls
the OOM killer before giving up.

Differences from Linux: one CPU; pcp lists hold order 0 only (Linux 5.14+
also caches orders 1-3 and THP); ``high`` is per list, not per CPU; the slow
path runs reclaim, compaction and the OOM killer through callbacks set by
the MM core and retries a fixed number of times instead of tracking
``no_progress_loops``; after one OOM kill the allocation is tried once more
and then fails (Linux loops, killing again while victims remain).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

from mmcore.constants import (
    COSTLY_ORDER,
    GFP_ZONE,
    MT,
    NR_MT,
    NR_ORDERS,
    PAGEBLOCK_ORDER,
    PAGEBLOCK_PAGES,
    AllocFlag,
    ZoneKind,
)
from mmcore.phys.buddy import ALLOC, BUDDY, PCP, TAIL, Buddy
from mmcore.phys.compaction.control import Mode
from mmcore.phys.physmem import PhysMem, Zone
from mmcore.phys.watermarks import (
    lowmem_reserve,
    min_free_kbytes,
    pcp_high,
    zone_batchsize,
    zone_watermarks,
)

SLOWPATH_RETRIES = 3
_NO_LINKS = array("i", [-1]) * 1024  # list links of pages off every list


class AllocStats:
    """Counters of the allocator front end."""

    def __init__(self) -> None:
        self.slow = 0
        self.failed = 0
        self.kswapd_wakeups = 0
        self.direct_reclaims = 0
        self.direct_compactions = 0
        self.pcp_refills = 0
        self.pcp_drains = 0
        self.oom_retries = 0  # allocations that succeeded after an OOM kill


class PageAllocator(Buddy):
    """Zones' buddy lists plus pcp lists, zonelists and the slow path.

    ``reclaim_cb(nid, order, mt) -> pages reclaimed``,
    ``compact_cb(zone, order, mode, mt) -> bool`` and ``oom_cb(nid, order, mt) -> bool``
    (a victim's memory was freed) are set by the MM core;
    ``kswapd_cb(nid, order, mt, flags)`` records a wakeup.
    """

    def __init__(self, phys: PhysMem) -> None:
        super().__init__(phys)
        self.owner = phys.frames.owner
        self.index_lo, self.index_hi = phys.frames.index_lo, phys.frames.index_hi
        self.set_index = phys.frames.set_index
        # the compiled rmqueue_smallest + prep (None: the Python steps)
        self.native_take = self.native.take if self.native is not None else None
        self.pb_zone = phys.frames.pb_zone
        self.zones = phys.zones
        self.stats = AllocStats()
        self.reclaim_cb: Callable[[int, int, int], int] | None = None
        self.compact_cb: Callable[[Zone, int, Mode, int], bool] | None = None
        self.kswapd_cb: Callable[[int, int, int, int], None] | None = None
        self.oom_cb: Callable[[int, int, int], bool] | None = None
        self.min_free_kbytes = 0
        # zonelists[nid][mt]
        self.zonelists = [
            [phys.zonelist(n.nid, mt == MT.MOVABLE) for mt in range(NR_MT)] for n in phys.nodes
        ]
        for node in phys.nodes:
            for z in node.zones:
                for pb in range(z.start >> PAGEBLOCK_ORDER, z.end >> PAGEBLOCK_ORDER):
                    self.pb_mt[pb] = MT.MOVABLE
                if z.managed:
                    self.free_range(z.start, z.end)
        self.setup_watermarks()

    # --- watermarks ------------------------------------------------------
    def setup_watermarks(self) -> None:
        """``init_per_zone_wmark_min`` + ``setup_per_zone_wmarks`` + pcp sizes."""
        lowmem = sum(z.managed for z in self.zones if z.kind == ZoneKind.NORMAL)
        self.min_free_kbytes = min_free_kbytes(lowmem)
        wsf = self.phys.spec.watermark_scale_factor
        for node in self.phys.nodes:
            reserve = lowmem_reserve([z.managed for z in node.zones])
            for z, row in zip(node.zones, reserve, strict=True):
                z.lowmem_reserve = row
        for z in self.zones:
            wm = zone_watermarks(
                z.managed, z.kind == ZoneKind.MOVABLE, lowmem, self.min_free_kbytes, wsf
            )
            z.wmark_min, z.wmark_low, z.wmark_high = wm.min, wm.low, wm.high
            z.low_for = [wm.low + z.lowmem_reserve[GFP_ZONE[mt]] for mt in range(NR_MT)]
            z.batch = zone_batchsize(z.managed)
            z.pcp_high = pcp_high(z.batch)

    @staticmethod
    def watermark_ok(z: Zone, order: int, mark: int, classzone: int = ZoneKind.NORMAL) -> bool:
        """``__zone_watermark_ok`` for an allocation whose highest usable zone
        is ``classzone`` (no ALLOC_HIGH/HARDER)."""
        if z.free_pages - (1 << order) + 1 <= mark + z.lowmem_reserve[classzone]:
            return False
        if not order:
            return True
        nr = z.nr_free
        for o in range(order, NR_ORDERS):
            if nr[o]:
                return True
        return False

    # --- pcp -------------------------------------------------------------
    def _pcp_refill(self, z: Zone, mt: int) -> int:
        """``rmqueue_bulk``: move ``batch`` pages to the pcp list, return one.
        Each page is ``rmqueue(z, 0, mt)``; the pages the smallest free block
        gives (all of it, or as many as are still wanted) are taken at once
        (:meth:`_split_off`)."""
        lst = z.pcp[mt]
        st, ordr, nxt, prv = self.st, self.ordr, self.nxt, self.prv
        heads, counts, nr_free = z.heads, z.counts, z.nr_free
        self.stats.pcp_refills += 1
        want = z.batch
        while want:
            for o in range(NR_ORDERS):
                i = o * NR_MT + mt
                pfn = heads[i]
                if pfn >= 0:
                    break
            else:  # no block of this type: a fallback steal
                pfn = self.rmqueue(z, 0, mt)
                if pfn < 0:
                    break
                st[pfn] = PCP
                ordr[pfn] = 0
                lst.append(pfn)
                want -= 1
                continue
            n, p = nxt[pfn], prv[pfn]
            if p >= 0:
                nxt[p] = n
            else:
                heads[i] = n
            if n >= 0:
                prv[n] = p
            counts[i] -= 1
            nr_free[o] -= 1
            z.free_pages -= 1 << o
            take = min(want, 1 << o)
            self._split_off(z, pfn, o, take, mt)
            lst.extend(range(pfn, pfn + take))
            want -= take
        return lst.pop() if lst else -1

    def _split_off(self, z: Zone, pfn: int, order: int, n: int, mt: int) -> None:
        """Take ``n`` <= 2^order pages from the block at ``pfn`` (already off
        its list; the lists of lower orders of ``mt`` are empty) in the state
        ``n`` order-0 ``rmqueue_smallest`` calls leave: page ``pfn + k`` was
        listed on its own at order ctz(k) (links -1, type ``mt``) and taken
        (now PCP, order 0) for 0 < k < n; the rest of the block stays listed
        as the aligned blocks that cover it, one per order."""
        st, ordr, fmt, nxt, prv = self.st, self.ordr, self.fmt, self.nxt, self.prv
        lo, hi = pfn + 1, pfn + n
        st[pfn] = PCP
        ordr[pfn] = 0
        if hi > lo:
            st[lo:hi] = bytes((PCP,)) * (hi - lo)
            ordr[lo:hi] = bytes(hi - lo)
            fmt[lo:hi] = bytes((mt,)) * (hi - lo)
            nxt[lo:hi] = prv[lo:hi] = _NO_LINKS[: hi - lo] if hi - lo <= len(
                _NO_LINKS) else array("i", [-1]) * (hi - lo)
        heads, counts, nr_free = z.heads, z.counts, z.nr_free
        k, end = n, 1 << order
        while k < end:
            o = (k & -k).bit_length() - 1
            b = pfn + k
            i = o * NR_MT + mt
            st[b] = BUDDY
            ordr[b] = o
            fmt[b] = mt
            nxt[b] = prv[b] = -1
            heads[i] = b
            counts[i] += 1
            nr_free[o] += 1
            z.free_pages += 1 << o
            k += 1 << o

    def pcp_drain(self, z: Zone, mt: int, count: int) -> None:
        """``free_pcppages_bulk``: give the ``count`` coldest pages back."""
        lst = z.pcp[mt]
        cold, z.pcp[mt] = lst[:count], lst[count:]
        self.stats.pcp_drains += 1
        pb_mt = self.pb_mt
        for pfn in cold:
            self.st[pfn] = TAIL
            self.free_one(z, pfn, 0, pb_mt[pfn >> PAGEBLOCK_ORDER])

    def drain_all(self, zones: list[Zone] | None = None) -> None:
        for z in zones if zones is not None else self.zones:
            for mt in range(NR_MT):
                if z.pcp[mt]:
                    self.pcp_drain(z, mt, len(z.pcp[mt]))

    # --- allocate --------------------------------------------------------
    def alloc(
        self, order: int, mt: int, owner: int, index: int = 0, nid: int = 0, flags: int = 7
    ) -> int:
        """Allocate a block of ``1 << order`` frames; return its pfn or -1."""
        if order == 0:
            for z in self.zonelists[nid][mt]:
                if z.free_pages > z.low_for[mt]:
                    lst = z.pcp[mt]
                    pfn = lst.pop() if lst else self._pcp_refill(z, mt)
                    if pfn >= 0:  # pcp pages already have order 0
                        self.st[pfn] = ALLOC
                        self.fmt[pfn] = mt
                        self.owner[pfn] = owner
                        if index >> 32 or self.index_hi[pfn]:
                            self.set_index(pfn, index)
                        else:
                            self.index_lo[pfn] = index
                        return pfn
        else:
            # _get_page(order, mt, nid, "wmark_low") and prep: the watermark
            # test, then rmqueue_smallest and prep (in one compiled step where
            # mmcore.phys.native is); a zone with no block of mt takes rmqueue
            # (the fallback)
            take = self.native_take
            cz = GFP_ZONE[mt]
            for z in self.zonelists[nid][mt]:
                if z.free_pages - (1 << order) + 1 <= z.wmark_low + z.lowmem_reserve[cz]:
                    continue
                if take is not None and 0 <= index <= 0xFFFFFFFF:
                    pfn = take(z.desc, order, mt, owner, index)
                    if pfn >= 0:
                        z.free_pages -= 1 << order
                        return pfn
                else:
                    pfn = self.rmqueue_smallest(z, order, mt)
                    if pfn >= 0:
                        return self.prep(pfn, order, mt, owner, index)
                nr = z.nr_free
                if any(nr[o] for o in range(order, NR_ORDERS)):
                    pfn = self.rmqueue(z, order, mt)
                    if pfn >= 0:
                        return self.prep(pfn, order, mt, owner, index)
        return self._slowpath(order, mt, owner, index, nid, flags)

    def _get_page(self, order: int, mt: int, nid: int, mark: str) -> int:
        cz = GFP_ZONE[mt]
        for z in self.zonelists[nid][mt]:
            if self.watermark_ok(z, order, getattr(z, mark), cz):
                pfn = self.rmqueue(z, order, mt)
                if pfn >= 0:
                    return pfn
        return -1

    def prep(self, pfn: int, order: int, mt: int, owner: int, index: int) -> int:
        self.st[pfn] = ALLOC
        self.ordr[pfn] = order
        self.fmt[pfn] = mt
        self.owner[pfn] = owner
        if index >> 32 or self.index_hi[pfn]:
            self.set_index(pfn, index)
        else:
            self.index_lo[pfn] = index
        return pfn

    def _slowpath(self, order: int, mt: int, owner: int, index: int, nid: int, flags: int) -> int:
        stats = self.stats
        stats.slow += 1
        zl = self.zonelists[nid][mt]
        if flags & AllocFlag.KSWAPD and self.kswapd_cb is not None:
            stats.kswapd_wakeups += 1
            for n in {z.nid for z in zl}:
                self.kswapd_cb(n, order, mt, flags)
        for attempt in range(SLOWPATH_RETRIES + 1):
            pfn = self._get_page(order, mt, nid, "wmark_min")
            if pfn >= 0:
                return self.prep(pfn, order, mt, owner, index)
            if attempt == SLOWPATH_RETRIES:
                break
            if order and flags & AllocFlag.COMPACT and self.compact_cb is not None:
                stats.direct_compactions += 1
                mode = Mode.ASYNC if attempt == 0 else Mode.SYNC_LIGHT
                for z in zl:
                    if z.managed >= 1 << order and self.compact_cb(z, order, mode, mt):
                        break
                pfn = self._get_page(order, mt, nid, "wmark_min")
                if pfn >= 0:
                    return self.prep(pfn, order, mt, owner, index)
            if not flags & AllocFlag.RECLAIM or self.reclaim_cb is None:
                break
            if order > COSTLY_ORDER and attempt:
                break  # costly orders give up early, as should_reclaim_retry
            stats.direct_reclaims += 1
            self.drain_all(zl)
            if not sum(self.reclaim_cb(n, order, mt) for n in sorted({z.nid for z in zl})):
                if order == 0:  # no progress: take a page if one is there, else stop
                    pfn = self._get_page(0, mt, nid, "wmark_min")
                    if pfn >= 0:
                        return self.prep(pfn, order, mt, owner, index)
                    break
        if flags & AllocFlag.RECLAIM and order <= COSTLY_ORDER and self.may_oom(nid, order, mt):
            pfn = self._get_page(order, mt, nid, "wmark_min")
            if pfn >= 0:
                stats.oom_retries += 1
                return self.prep(pfn, order, mt, owner, index)
        stats.failed += 1
        return -1

    def may_oom(self, nid: int, order: int, mt: int) -> bool:
        """``__alloc_pages_may_oom``: kill a victim; True when memory was freed
        (its pcp pages are drained so the retry can see them)."""
        if self.oom_cb is None or not self.oom_cb(nid, order, mt):
            return False
        self.drain_all()
        return True

    # --- free ------------------------------------------------------------
    def free(self, pfn: int) -> None:
        """Free an allocated block by its head pfn."""
        st = self.st
        if st[pfn] != ALLOC:
            raise ValueError(f"free of pfn {pfn:#x} which is not an allocated block head")
        self.owner[pfn] = 0
        pb = pfn >> PAGEBLOCK_ORDER
        z = self.zones[self.pb_zone[pb]]
        order = self.ordr[pfn]
        if order == 0:
            st[pfn] = PCP
            lst = z.pcp[self.pb_mt[pb]]
            lst.append(pfn)
            if len(lst) > z.pcp_high:
                self.pcp_drain(z, self.pb_mt[pb], z.batch)
            return
        st[pfn] = TAIL
        if order > PAGEBLOCK_ORDER and (pfn < z.start or pfn + (1 << order) > z.end):
            self.free_range(pfn, pfn + (1 << order))  # straddles a moved boundary
            return
        self.free_one(z, pfn, order, self.pb_mt[pb])

    # --- queries ---------------------------------------------------------
    def free_pages_node(self, nid: int) -> int:
        return sum(z.free_pages for z in self.phys.nodes[nid].zones)

    def pageblocks(self, z: Zone) -> range:
        return range(z.start // PAGEBLOCK_PAGES, z.end // PAGEBLOCK_PAGES)
