"""Page reclaim: kswapd and direct reclaim over the active/inactive LRUs,
for a zone index as Linux's ``shrink_node`` with ``sc->reclaim_idx``.

An allocation reclaims only pages in the zones it may use (``gfp_zone``):
an unmovable one those of kind <= NORMAL, a movable one every zone.  The
LRU lists are per node, so the scan skips pages above ``reclaim_idx`` and
rotates them to the list head, as ``isolate_lru_folios`` does (after
``SWAP_CLUSTER_MAX_SKIPPED`` skips in one call the zone test stops applying,
as there); the amounts to scan come from the eligible zones' sizes
(``lruvec_lru_size(..., reclaim_idx)``), so a list with no eligible page is
not scanned at all.  ``shrink_node`` splits its work between anon and file
lists (the ``reclaim`` hook, by default ``get_scan_count``'s balance:
see ``scan_balance`` below), deactivates active pages when
``inactive_is_low``, and scans inactive lists from the tail: referenced
pages (PTE accessed bit through ``get_pte``) are activated, the rest evicted
(anon to swap, counted only; file dropped).  A long-term pinned anonymous
page (``MM.pinned``) cannot be unmapped (``try_to_unmap`` fails on a
``folio_maybe_dma_pinned`` folio): it is activated and counted
(``nr_unmap_fail``), never swapped.  Reclaimable slab is shrunk in
proportion to the eligible LRU pages scanned (all that is asked when no LRU
page is eligible).  Every scanned page is counted on behalf of the
allocation that caused the reclaim, movable or not: the pressure signal the
``zone_resize`` hook receives after each reclaim pass.  A direct reclaim
pass whose eligible zones hold no LRU page (a normal zone full of kernel
memory) scans nothing, though its allocation is under pressure: the first
such pass of an allocation on a node counts the pages it was asked to
reclaim, once (not again for the allocation's retries, and never for
kswapd, which scans only what there is).

kswapd is woken (``wakeup_kswapd``) with the highest zone index and order of
its wakers, unless the node is already balanced for that order (then an
allocation that may not reclaim directly wakes kcompactd itself).  It runs
at the end of the tick (``balance_pgdat``) until ``pgdat_balanced``: some
zone up to that index passes the watermark check for the order at its high
watermark plus its lowmem reserve for that index.  After reclaiming
``compact_gap(order)`` pages it balances for order 0 only, and going to
sleep balanced it wakes kcompactd for the order it was woken with
(``kswapd_try_to_sleep``, :meth:`MM.kswapd_sleep`).

The built-in split (``scan_balance``) is either fixed (swappiness / 200 of
the pass from anon, as ``get_scan_count`` gives for equal costs) or
``get_scan_count`` itself ("cost"): SCAN_FILE in ``cache_trim_mode`` (the
node's inactive file pages reach ``1 << DEF_PRIORITY`` and neither are they
low nor did file refaults activate since the last pass), SCAN_ANON when
file pages are tiny (file + free at most the zones' high watermarks), else
fractions ``swappiness * (total + 1) / (anon_cost + 1)`` against
``(200 - swappiness) * (total + 1) / (file_cost + 1)`` from the node's
recent costs (:mod:`mmcore.virt.workingset`); so clean page cache goes
before swap while it is plentiful and not thrashing.  Reclaimable slab
objects are shrunk by ``shrink_slab`` in proportion to the LRU pages the
pass scanned (:mod:`mmcore.phys.slab`).

Differences from Linux: no priorities (``DEF_PRIORITY`` is used where the
split needs one, SCAN_EQUAL never happens), no per-memcg reclaim, kswapd
runs synchronously at tick end rather than as a thread, with at most
``KSWAPD_MAX_PASSES`` passes and no priority loop, and without
``kswapd_failures`` or watermark boosting; skipped pages are not counted as
scanned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import (
    ALLOC_DEFAULT,
    GFP_ZONE,
    MT,
    NR_ZONE_KINDS,
    SWAP_CLUSTER_MAX,
    AllocFlag,
)
from mmcore.phys.compaction.control import compact_gap
from mmcore.virt.evictions import evict_and_free
from mmcore.virt.isolate import settle_arrays
from mmcore.virt.lru import NR_LRU, LruList, lid_of
from mmcore.virt.tailscan import (
    FIRST_WINDOW,
    MAX_WINDOW,
    NONE,
    InactiveScan,
    Window,
    active_window,
    gather,
)

if TYPE_CHECKING:
    from mmcore.hooks.inplace import ReclaimContext
    from mmcore.mm import MM

SCAN_FACTOR = 4  # pages scanned per page to reclaim, at most
KSWAPD_MAX_PASSES = 64
SWAP_CLUSTER_MAX_SKIPPED = SWAP_CLUSTER_MAX << 10
TOP_ZONE = NR_ZONE_KINDS - 1
DEF_PRIORITY = 12
MAX_SWAPPINESS = 200
SCAN_BALANCES = ("fixed", "cost")


def join(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else NONE


class Reclaimer:
    hook: ReclaimContext  # the reclaim hook's context writer, set by the MM core

    def __init__(self, mm: MM, swappiness: int = 60, balance: str = "fixed") -> None:
        self.mm = mm
        self.swappiness = swappiness
        self.balance = balance
        self.cost_pct = -1  # the cost model's split of the current pass (hook fallback)
        self.trim_passes = 0  # passes in cache_trim_mode
        self.scanned = [0, 0]  # [on behalf of unmovable, of movable] allocations
        self.window = [0, 0]  # since the last zone-resize decision
        self.reclaimed = 0
        self.kswapd_runs = 0
        self.high_order_runs = 0  # kswapd runs woken for an order above 0
        self.order_drops = 0  # of them, runs that reclaimed compact_gap and went on for order 0
        self.balanced_wakeups = 0  # wakeups of a node already balanced for the order
        self.skipped = 0  # pages passed over for being above reclaim_idx
        self.unmap_fail = 0  # pinned pages kept (activated) instead of evicted
        self.nothing_eligible = False  # the last pass found no LRU page to scan
        # (slow-path entry, nid) of the allocation whose shortfall was counted
        self.shortfalls: set[tuple[int, int]] = set()
        self.unscannable = 0  # pages counted that way
        # nid -> [order, highest zone index, migratetype of the first waker]
        self.pending: dict[int, list[int]] = {}
        self.zone_kind = bytes(z.kind for z in mm.phys.zones)

    # --- policy defaults ---------------------------------------------------
    def default_split(self, anon: int, file: int) -> int:
        """Percent of the pass taken from anon pages (``get_scan_count`` for
        equal costs: swappiness / 200)."""
        if not file:
            return 100
        if not anon:
            return 0
        if self.cost_pct >= 0:
            return self.cost_pct
        return 100 * self.swappiness // 200

    def scan_count(self, nid: int, anon: int, file: int) -> int:
        """``get_scan_count`` with ``prepare_scan_control``'s modes: percent
        of the pass taken from anon pages."""
        if not file:
            return 100
        if not anon:
            return 0
        mm = self.mm
        ws, lru = mm.workingset, mm.lru
        inactive_file = lru.count[lid_of(nid, LruList.INACTIVE_FILE)]
        deactivate_file = ws.thrashing(nid) or lru.inactive_is_low(nid, LruList.INACTIVE_FILE)
        if inactive_file >> DEF_PRIORITY and not deactivate_file:
            self.trim_passes += 1
            return 0  # cache_trim_mode: SCAN_FILE
        zones = mm.phys.nodes[nid].zones
        node_file = inactive_file + lru.count[lid_of(nid, LruList.ACTIVE_FILE)]
        inactive_anon = lru.count[lid_of(nid, LruList.INACTIVE_ANON)]
        if (node_file + sum(z.free_pages for z in zones) <= sum(z.wmark_high for z in zones)
                and not lru.inactive_is_low(nid, LruList.INACTIVE_ANON)
                and inactive_anon >> DEF_PRIORITY):
            return 100  # file_is_tiny: SCAN_ANON
        swappiness = self.swappiness
        total = ws.anon_cost[nid] + ws.file_cost[nid]
        anon_cost, file_cost = total + ws.anon_cost[nid], total + ws.file_cost[nid]
        total = anon_cost + file_cost
        ap = swappiness * (total + 1) // (anon_cost + 1)
        fp = (MAX_SWAPPINESS - swappiness) * (total + 1) // (file_cost + 1)
        return 100 * ap // (ap + fp) if ap + fp else 0

    # --- core --------------------------------------------------------------
    def shrink_node(
        self, nid: int, nr_to_reclaim: int, mt: int, reclaim_idx: int | None = None
    ) -> int:
        """Reclaim up to ``nr_to_reclaim`` pages of node ``nid`` in its zones
        of kind <= ``reclaim_idx`` (default: ``gfp_zone(mt)``), on behalf of
        an allocation of migratetype ``mt``."""
        mm = self.mm
        idx = GFP_ZONE[mt] if reclaim_idx is None else reclaim_idx
        counts = [mm.lru.eligible(nid, kind, idx)[0] for kind in range(NR_LRU)]
        anon_pct, target = self.split(nid, nr_to_reclaim, counts, mt)
        want = [nr_to_reclaim * anon_pct // 100, 0]
        want[1] = nr_to_reclaim - want[0]
        reclaimed = scanned = 0
        for kind, (inactive, active) in enumerate(
            (
                (LruList.INACTIVE_ANON, LruList.ACTIVE_ANON),
                (LruList.INACTIVE_FILE, LruList.ACTIVE_FILE),
            )
        ):
            if not want[kind]:
                continue
            if mm.lru.inactive_is_low(nid, inactive):
                self.shrink_active(nid, active, SWAP_CLUSTER_MAX * SCAN_FACTOR, idx)
            got, seen = self.shrink_inactive(nid, inactive, want[kind], target, idx)
            reclaimed += got
            scanned += seen
        if reclaimed < nr_to_reclaim:  # the other lists, if one split ran dry
            for inactive in (LruList.INACTIVE_FILE, LruList.INACTIVE_ANON):
                got, seen = self.shrink_inactive(
                    nid, inactive, nr_to_reclaim - reclaimed, target, idx
                )
                reclaimed += got
                scanned += seen
        nr_slab = len(mm.kernel.reclaimable)
        lru_pages = sum(counts)
        slab = mm.kernel.shrink(
            nr_slab * scanned // (lru_pages + 1) if lru_pages else nr_to_reclaim - reclaimed
        )
        if mm.slab.objects:
            slab += mm.slab.shrink(scanned, lru_pages)
        reclaimed += slab
        mm.workingset.take_snapshot(nid)
        behalf = 1 if mt == MT.MOVABLE else 0
        self.scanned[behalf] += scanned
        self.window[behalf] += scanned
        self.nothing_eligible = not lru_pages
        self.reclaimed += reclaimed
        mm.stats.pgscan += scanned
        mm.stats.pgsteal += reclaimed
        return reclaimed

    def split(self, nid: int, nr: int, counts: list[int], mt: int) -> tuple[int, int]:
        """The reclaim hook: (percent of the pass from anon pages, target pid or 0)."""
        mm = self.mm
        ia, aa, if_, af = counts
        hooks = mm.hooks
        cost = self.balance == "cost"
        if not hooks.attached("reclaim"):
            hooks.points["reclaim"].calls += 1
            if cost:
                return self.scan_count(nid, ia + aa, if_ + af), 0
            return self.default_split(ia + aa, if_ + af), 0
        # what a program's fallback decides
        builtin = self.scan_count(nid, ia + aa, if_ + af) if cost else -1
        self.cost_pct = builtin
        procs = mm.procs
        largest = max(procs.values(), key=lambda p: p.rss_pages).pid if procs else 0
        try:
            decided = self.hook.decide(nr, aa, ia, af, if_, self.swappiness, len(procs), largest,
                                       nid, int(mt == MT.MOVABLE), mm.pa.free_pages_node(nid))
            if decided is None:  # the built-in policy decides (a fallback, counted)
                decided = self.default_split(ia + aa, if_ + af), 0
        finally:
            self.cost_pct = -1
        pct, target = decided
        if target:
            if target not in procs:
                # not a live process: the proposal fails validation, so the
                # built-in policy decides and the hook counts a fallback
                hooks.points["reclaim"].fallbacks += 1
                if cost:
                    return builtin, 0
                return self.default_split(ia + aa, if_ + af), 0
        return pct, target

    def shrink_active(self, nid: int, active: int, nr: int, idx: int = TOP_ZONE) -> None:
        """``shrink_active_list``: move up to ``nr`` eligible pages from the
        tail of an active list to its inactive list, clearing their
        referenced bits (pages above ``idx`` go back to the head); the list
        changes at once afterwards (:func:`~mmcore.virt.isolate.settle`).
        The scan goes window by window (:mod:`mmcore.virt.tailscan`)."""
        lru = self.mm.lru
        lid = lid_of(nid, active)
        prv = self.mm.frames.prv
        win = Window(self, idx, idx < TOP_ZONE, SWAP_CLUSTER_MAX_SKIPPED)
        pfn, visits, skipped, moved = lru.tail[lid], lru.entries[lid], 0, 0
        back: list[np.ndarray] = []
        to: list[np.ndarray] = []
        last = -1
        while moved < nr and pfn >= 0 and visits:
            room = nr - moved
            if win.check_zone and skipped < SWAP_CLUSTER_MAX_SKIPPED:
                room += SWAP_CLUSTER_MAX_SKIPPED - skipped
            pfns = gather(prv, pfn, min(visits, room, max(FIRST_WINDOW, 2 * (nr - moved)),
                                        MAX_WINDOW))
            passed, went = active_window(self, win, pfns, skipped, nr - moved)
            back.append(passed)
            to.append(went)
            skipped += len(passed)
            moved += len(went)
            k = len(passed) + len(went)
            visits -= k
            last = int(pfns[k - 1])
            pfn = prv[last]
        if last >= 0:
            settle_arrays(lru, lid, last, join(back), join(to), lid - 1, NONE)
        self.skipped += skipped

    def shrink_inactive(
        self, nid: int, inactive: int, nr: int, target: int, idx: int = TOP_ZONE
    ) -> tuple[int, int]:
        """``shrink_inactive_list``: scan the eligible tail of an inactive list
        for ``nr`` pages; return (pages reclaimed, pages scanned).  The scan
        decides for each page it reaches (window by window,
        :class:`~mmcore.virt.tailscan.InactiveScan`), then the list changes
        at once (:func:`~mmcore.virt.isolate.settle_arrays`) and the evicted
        pages are unmapped and freed in the order they were reached
        (:func:`~mmcore.virt.evictions.evict_and_free`)."""
        mm = self.mm
        lru = mm.lru
        lid = lid_of(nid, inactive)
        anon = inactive == LruList.INACTIVE_ANON
        check_zone = idx < TOP_ZONE
        eligible = lru.eligible(nid, inactive, idx)[1] if check_zone else lru.entries[lid]
        budget = min(eligible, nr * SCAN_FACTOR)
        if nr <= 0 or budget <= 0 or lru.tail[lid] < 0:  # nothing to scan
            if self.balance == "cost":
                mm.workingset.note_cost(nid, not anon, 0, 0)
            return 0, 0
        scan = InactiveScan(self, lid, anon, nr, budget, target, check_zone, idx,
                            SWAP_CLUSTER_MAX_SKIPPED)
        last = scan.run(lru.tail[lid], lru.entries[lid])
        self.unmap_fail += scan.unmap_fail
        if last >= 0:
            settle_arrays(lru, lid, last, join(scan.back), join(scan.active), lid + 1,
                          join(scan.gone))
        evict_and_free(mm, scan.evict)
        reclaimed, scanned = scan.reclaimed, scan.scanned
        self.skipped += scan.skipped
        if self.balance == "cost":  # lru_note_cost: anon written out, pages kept
            mm.workingset.note_cost(nid, not anon, reclaimed if anon else 0, scanned - reclaimed)
        return reclaimed, scanned

    # --- drivers -------------------------------------------------------------
    def direct(self, nid: int, order: int, mt: int) -> int:
        """``try_to_free_pages`` on one node for an allocation in its slow
        path, then the zone-resize decision.  A pass that finds no LRU page
        in the allocation's zones scans nothing, yet that allocation is under
        the hardest pressure there is: the first such pass of the allocation
        on this node counts what it was asked to reclaim as scanned on its
        behalf (once: its retries, and kswapd, add nothing for it)."""
        nr = SWAP_CLUSTER_MAX << min(order, 4)
        got = self.shrink_node(nid, nr, mt)
        if self.nothing_eligible:
            key = (self.mm.pa.stats.slow, nid)
            if key not in self.shortfalls:
                self.shortfalls = {k for k in self.shortfalls if k[0] == key[0]} | {key}
                self.window[0 if mt != MT.MOVABLE else 1] += nr
                self.unscannable += nr
        self.mm.after_reclaim(nid)
        return got

    def wake(self, nid: int, order: int, mt: int, flags: int = ALLOC_DEFAULT) -> None:
        """``wakeup_kswapd``: kswapd of ``nid`` will balance up to the highest
        zone index and order its wakers need; its scans count on behalf of
        the first waker's migratetype.  A node already balanced for the
        order is left alone; if the allocation may not reclaim directly,
        kcompactd is woken instead (free memory may be there, but too
        fragmented for the order)."""
        cz = GFP_ZONE[mt]
        if self.pgdat_balanced(nid, cz, order):
            self.balanced_wakeups += 1
            if not flags & AllocFlag.RECLAIM:
                self.mm.compaction.kcompactd.wake(nid, order, cz)
            return
        p = self.pending.get(nid)
        if p is None:
            self.pending[nid] = [order, cz, mt]
        else:
            p[0], p[1] = max(p[0], order), max(p[1], cz)

    def pgdat_balanced(self, nid: int, classzone: int = TOP_ZONE, order: int = 0) -> bool:
        """``pgdat_balanced``: some managed zone up to ``classzone`` passes the
        watermark check for ``order`` at its high watermark (plus its
        reserve for ``classzone``)."""
        ok = self.mm.pa.watermark_ok
        return any(
            ok(z, order, z.wmark_high, classzone)
            for z in self.mm.phys.nodes[nid].zones
            if z.managed and z.kind <= classzone
        )

    def balance_pgdat(self, nid: int, order: int, classzone: int, mt: int) -> int:
        """``balance_pgdat``: reclaim for ``classzone`` until the node is
        balanced for the order (or reclaim makes no progress), each pass
        asking for the eligible zones' high watermarks
        (``kswapd_shrink_node``).  Once the passes have reclaimed
        ``compact_gap(order)`` pages the order drops to 0, as
        ``kswapd_shrink_node`` does: the rest is compaction's job; so it
        does when a pass reclaims nothing.  Returns the order the node was
        finally balanced for (``reclaim_order``)."""
        sc_order, reclaimed = order, 0
        nr = sum(max(z.wmark_high, SWAP_CLUSTER_MAX)  # kswapd_shrink_node's nr_to_reclaim
                 for z in self.mm.phys.nodes[nid].zones if z.managed and z.kind <= classzone)
        for _ in range(KSWAPD_MAX_PASSES):
            if self.pgdat_balanced(nid, classzone, sc_order):
                break
            got = self.shrink_node(nid, nr, mt, classzone)
            reclaimed += got
            if sc_order and (reclaimed >= compact_gap(sc_order) or not got):
                # no progress either: Linux retries until the node is
                # hopeless (kswapd_failures) and then sleeps; here at once
                sc_order = 0
                self.order_drops += 1
            elif not got:
                break
        return sc_order

    def run_kswapd(self) -> int:
        """Every woken kswapd: ``balance_pgdat``, then, if the node is balanced
        for the order reclaim ended with, ``kswapd_try_to_sleep`` (which wakes
        kcompactd for the order kswapd was woken with)."""
        total = 0
        while self.pending:
            nid, (order, classzone, mt) = self.pending.popitem()
            self.kswapd_runs += 1
            if order:
                self.high_order_runs += 1
            self.mm.pa.drain_all(self.mm.phys.nodes[nid].zones)
            before = self.reclaimed
            reclaim_order = self.balance_pgdat(nid, order, classzone, mt)
            total += self.reclaimed - before
            self.mm.after_reclaim(nid)
            if self.pgdat_balanced(nid, classzone, reclaim_order):
                self.mm.kswapd_sleep(nid, order, classzone)
        return total
