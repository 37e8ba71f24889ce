"""Page reclaim: kswapd and direct reclaim over the active/inactive LRUs.

``shrink_node`` splits its work between anon and file lists (the
``reclaim`` hook, by default a swappiness-60 split as ``get_scan_count``
gives for equal costs), deactivates active pages when ``inactive_is_low``,
and scans inactive lists from the tail: referenced pages (PTE accessed bit
through ``get_pte``) are activated, the rest evicted (anon to swap, counted only; file dropped).
Reclaimable slab is shrunk in proportion to the LRU pages scanned.  Every
scanned page is counted on behalf of the allocation that caused the reclaim,
movable or not: the pressure signal the ``zone_resize`` hook receives
after each reclaim pass.  kswapd is woken below the low watermark and runs
(at the end of the current tick) until every zone of its node is above high.

Differences from Linux: no priorities/scan_control cost model, no refault
(workingset) detection, no per-memcg reclaim, kswapd runs synchronously at
tick end rather than as a thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import MT, SWAP_CLUSTER_MAX
from mmcore.hooks.specs import RECLAIM
from mmcore.virt.lru import LruList, lid_of

if TYPE_CHECKING:
    from mmcore.mm import MM

SCAN_FACTOR = 4  # pages scanned per page to reclaim, at most
KSWAPD_MAX_PASSES = 64
TARGET_OFF = RECLAIM.field_named("target_pid").offset


class Reclaimer:
    def __init__(self, mm: MM, swappiness: int = 60) -> None:
        self.mm = mm
        self.swappiness = swappiness
        self.scanned = [0, 0]  # [on behalf of unmovable, of movable] allocations
        self.window = [0, 0]  # since the last zone-resize decision
        self.reclaimed = 0
        self.kswapd_runs = 0
        self.pending: dict[int, int] = {}  # nid -> migratetype of the waker

    # --- policy defaults ---------------------------------------------------
    def default_split(self, anon: int, file: int) -> int:
        """Percent of the pass taken from anon pages (``get_scan_count`` for
        equal costs: swappiness / 200)."""
        if not file:
            return 100
        if not anon:
            return 0
        return 100 * self.swappiness // 200

    # --- core --------------------------------------------------------------
    def shrink_node(self, nid: int, nr_to_reclaim: int, mt: int) -> int:
        mm = self.mm
        counts = mm.lru.node_counts(nid)
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
                self.shrink_active(nid, active, SWAP_CLUSTER_MAX * SCAN_FACTOR)
            got, seen = self.shrink_inactive(nid, inactive, want[kind], target)
            reclaimed += got
            scanned += seen
        if reclaimed < nr_to_reclaim:  # the other lists, if one split ran dry
            for inactive in (LruList.INACTIVE_FILE, LruList.INACTIVE_ANON):
                got, seen = self.shrink_inactive(nid, inactive, nr_to_reclaim - reclaimed, target)
                reclaimed += got
                scanned += seen
        lru_pages = sum(counts) + 1
        slab = mm.kernel.shrink(len(mm.kernel.reclaimable) * scanned // lru_pages)
        reclaimed += slab
        behalf = 1 if mt == MT.MOVABLE else 0
        self.scanned[behalf] += scanned
        self.window[behalf] += scanned
        self.reclaimed += reclaimed
        mm.stats.pgscan += scanned
        mm.stats.pgsteal += reclaimed
        return reclaimed

    def split(self, nid: int, nr: int, counts: list[int], mt: int) -> tuple[int, int]:
        """The reclaim hook: (percent of the pass from anon pages, target pid or 0)."""
        mm = self.mm
        ia, aa, if_, af = counts
        hooks = mm.hooks
        if not hooks.attached("reclaim"):
            hooks.points["reclaim"].calls += 1
            return self.default_split(ia + aa, if_ + af), 0
        procs = mm.procs
        largest = max(procs.values(), key=lambda p: p.rss_pages).pid if procs else 0
        values = (
            nr, aa, ia, af, if_, self.swappiness, len(procs), largest, 0, nid,
            int(mt == MT.MOVABLE), mm.pa.free_pages_node(nid),
        )  # fmt: skip
        pct, ctx = hooks.decide("reclaim", values, default_args=(ia + aa, if_ + af))
        target = 0
        if ctx is not None:
            target = int.from_bytes(ctx[TARGET_OFF : TARGET_OFF + 4], "little")
            if target and target not in procs:
                # not a live process: the proposal fails validation, so the
                # built-in policy decides and the hook counts a fallback
                hooks.points["reclaim"].fallbacks += 1
                return self.default_split(ia + aa, if_ + af), 0
        return pct, target

    def shrink_active(self, nid: int, active: int, nr: int) -> None:
        mm = self.mm
        lru, fr = mm.lru, mm.frames
        lid = lid_of(nid, active)
        for _ in range(nr):
            pfn = lru.tail[lid]
            if pfn < 0:
                break
            owner = mm.owners[fr.owner[pfn]]
            owner.referenced(pfn, fr.index[pfn])  # clears the bit, as folio_referenced
            lru.move(pfn, lid - 1)

    def shrink_inactive(self, nid: int, inactive: int, nr: int, target: int) -> tuple[int, int]:
        mm = self.mm
        lru, fr = mm.lru, mm.frames
        lid = lid_of(nid, inactive)
        reclaimed = scanned = 0
        budget = min(lru.entries[lid], nr * SCAN_FACTOR)
        while reclaimed < nr and scanned < budget:
            pfn = lru.tail[lid]
            if pfn < 0:
                break
            scanned += 1
            owner_id = fr.owner[pfn]
            if target and owner_id != target:
                lru.move(pfn, lid)
                continue
            owner = mm.owners[owner_id]
            index, order = fr.index[pfn], fr.order[pfn]
            # unmapped page cache is reclaimed even if PG_referenced
            # (folio_check_references); mapped anon that was used is activated
            if inactive == LruList.INACTIVE_ANON and owner.referenced(pfn, index):
                lru.move(pfn, lid + 1)
                continue
            lru.remove(pfn)
            owner.evict(pfn, index, order)
            mm.pa.free(pfn)
            reclaimed += 1 << order
        return reclaimed, scanned

    # --- drivers -------------------------------------------------------------
    def direct(self, nid: int, order: int, mt: int) -> int:
        got = self.shrink_node(nid, SWAP_CLUSTER_MAX << min(order, 4), mt)
        self.mm.after_reclaim(nid)
        return got

    def wake(self, nid: int, mt: int) -> None:
        self.pending.setdefault(nid, mt)

    def node_balanced(self, nid: int) -> bool:
        return all(z.free_pages >= z.wmark_high for z in self.mm.phys.nodes[nid].zones if z.managed)

    def run_kswapd(self) -> int:
        """Run every woken kswapd until its node is balanced (or stuck)."""
        total = 0
        while self.pending:
            nid, mt = self.pending.popitem()
            self.kswapd_runs += 1
            self.mm.pa.drain_all(self.mm.phys.nodes[nid].zones)
            for _ in range(KSWAPD_MAX_PASSES):
                if self.node_balanced(nid):
                    break
                got = self.shrink_node(nid, SWAP_CLUSTER_MAX * 4, mt)
                total += got
                if not got:
                    break
            self.mm.after_reclaim(nid)
        return total
