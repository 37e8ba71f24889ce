"""Compacting one zone (``compact_zone``): a migrate scanner from the zone's
start, a free scanner from its end (or from the end of another zone),
migrating movable pages until a free block of the requested order exists or
the scanners meet; and direct compaction's control around it
(``try_to_compact_pages``: deferral, ``compaction_suitable``).

Modes as Linux uses them: ``ASYNC`` (direct compaction's first try) scans
only source pageblocks of the request's migratetype class
(``suitable_migration_source``) and gives up on an order-aligned chunk as
soon as one of its pages cannot be isolated (``skip_on_failure``: an
unmovable or pinned page); ``SYNC_LIGHT`` (later direct tries, kcompactd)
scans every pageblock and migrates every page it can; ``SYNC`` also
ignores the pageblock skip bits.  A pageblock whose scan isolated nothing
gets its skip bit (``update_pageblock_skip``); the bits are reset
(``__reset_isolation_suitable``) when a run restarts after a full deferral,
when kswapd goes to sleep after scanners met in direct compaction
(``compact_blockskip_flush``), and at once when kcompactd's scanners meet.

Both scanners find their pages in a pageblock with numpy over the frame
arrays (:mod:`~mmcore.phys.compaction.scan`), then isolate and migrate
them one by one in pfn order, as a page-by-page walk would; ASYNC's
chunk-wise give-up keeps that walk for pageblocks holding allocated pages.

As Linux, compound pages (THP, 1 GiB) are skipped by the migrate scanner
(``skip_isolation_on_order``: no request here is above pageblock order) and
free blocks of pageblock order or more are not used as targets.
Differences: no cached scanner positions (every run starts at the zone's
ends), no ``fast_find_migrateblock``/``fast_isolate_freepages``, no lock
contention (so ASYNC never aborts for it), and a source zone may send its
pages to a different target zone of its node (Contiguitas evacuates the
unmovable region that way); a target on another node is refused, as
Linux's compaction never leaves its zone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import MT, NR_ORDERS, PAGEBLOCK_ORDER, PAGEBLOCK_PAGES, ZoneKind
from mmcore.errors import InvariantError
from mmcore.phys.buddy import ALLOC, TAIL
from mmcore.phys.compaction.control import (
    COMPACT_MAX_DEFER_SHIFT,
    EXTFRAG_THRESHOLD,
    DeferState,
    Mode,
    Result,
    compaction_defer_reset,
    compaction_deferred,
    compaction_restarting,
    compaction_suitable,
    defer_compaction,
)
from mmcore.phys.compaction.kcompactd import Kcompactd
from mmcore.phys.compaction.migrate import migrate
from mmcore.phys.compaction.scan import Candidates, FreeTargets, walk_async
from mmcore.phys.fragmentation import fragmentation_score_wmark, fragmentation_score_zone
from mmcore.phys.physmem import Zone

if TYPE_CHECKING:
    from mmcore.mm import MM


class Compactor:
    def __init__(self, mm: MM, proactiveness: int = 20,
                 extfrag_threshold: int = EXTFRAG_THRESHOLD, interval: int = 50) -> None:
        self.mm = mm
        self.proactiveness = proactiveness
        self.extfrag_threshold = extfrag_threshold
        self.runs = 0
        self.successes = 0
        self.migrated = 0
        self.proactive_runs = 0
        self.scanned = 0
        self.deferred = 0  # direct compactions skipped by compaction_deferred
        self.not_suitable = 0  # ... refused by compaction_suitable
        self.isolate_failed = 0  # pinned pages the migrate scanner could not take
        self.skip_resets = 0
        self.defer = [DeferState() for _ in mm.phys.zones]
        self.skip = bytearray(len(mm.frames.pb_mt))  # pageblock skip bits
        self.flush = [False] * len(mm.phys.zones)  # compact_blockskip_flush
        self.kcompactd = Kcompactd(self, interval)

    # --- skip bits -----------------------------------------------------------
    def reset_skip(self, z: Zone) -> None:
        """``__reset_isolation_suitable``: clear the zone's skip bits."""
        lo, hi = z.start >> PAGEBLOCK_ORDER, z.end >> PAGEBLOCK_ORDER
        self.skip[lo:hi] = bytes(hi - lo)
        self.flush[z.zid] = False
        self.skip_resets += 1

    def kswapd_sleep(self, nid: int) -> None:
        """``reset_isolation_suitable`` when kswapd goes to sleep."""
        for z in self.mm.phys.nodes[nid].zones:
            if self.flush[z.zid]:
                self.reset_skip(z)

    # --- direct compaction -----------------------------------------------------
    def direct(self, z: Zone, order: int, mode: Mode = Mode.SYNC_LIGHT,
               mt: int = MT.MOVABLE) -> bool:
        """``compact_zone_order`` with ``try_to_compact_pages``' deferral for
        an allocation of ``order`` and migratetype ``mt``; True on success."""
        d = self.defer[z.zid]
        classzone = ZoneKind.MOVABLE if mt == MT.MOVABLE else ZoneKind.NORMAL
        if mode != Mode.SYNC and compaction_deferred(d, order):
            self.deferred += 1
            return False
        if compaction_restarting(d, order):
            self.reset_skip(z)
        if not compaction_suitable(z, order, classzone, self.extfrag_threshold):
            self.not_suitable += 1
            return False
        result = self.compact_zone(z, order, mode=mode, mt=mt, direct=True)
        if result == Result.SUCCESS:
            compaction_defer_reset(d, order, True)
            return True
        if mode != Mode.ASYNC and result == Result.COMPLETE:
            defer_compaction(d, order)
        return False

    def compact_zone(
        self, z: Zone, order: int, target: Zone | None = None, proactive: bool = False,
        mode: Mode = Mode.SYNC_LIGHT, mt: int = MT.MOVABLE, direct: bool = False,
    ) -> Result:
        """Compact ``z`` for a block of ``order`` (-1: proactive/whole zone).

        With ``target`` (another zone of the same node), movable pages go to
        free pages of that zone instead.  Returns SUCCESS when the goal was
        reached, else COMPLETE.
        """
        mm = self.mm
        pa, fr = mm.pa, mm.frames
        tz = target if target is not None else z
        if tz.nid != z.nid:
            raise ValueError(f"compaction of {z.name} into {tz.name}: a target on another node "
                             "(compaction migrates within a node)")
        if not z.managed or not tz.managed:
            return Result.SKIPPED
        self.runs += 1
        pa.drain_all([z, tz])
        st, owner, pb_mt = fr.state, fr.owner, fr.pb_mt
        owners, pinned, skip = mm.owners, mm.pinned, self.skip
        use_skip = mode != Mode.SYNC and not proactive and target is None
        async_direct = direct and mode == Mode.ASYNC
        chunk = 1 << max(order, 0)
        wmark_low = fragmentation_score_wmark(self.proactiveness, True)
        free_pages: list[int] = []
        migrate_pfn, free_pfn = z.start, tz.end - PAGEBLOCK_PAGES
        same = tz is z
        ok = False

        def finished() -> bool:
            if not same and order < 0:
                return False  # an evacuation scans the whole source zone
            if proactive or order < 0:
                return fragmentation_score_zone(z.nr_free) <= wmark_low
            return any(z.nr_free[o] for o in range(order, NR_ORDERS))

        st_v, ord_v, mt_v = fr.view("state"), fr.view("order"), fr.view("mt")
        cand = Candidates(st_v, ord_v, mt_v, z.start, z.end)
        targets = FreeTargets(st_v, ord_v, tz.start, tz.end)

        def isolate_free() -> bool:
            nonlocal free_pfn
            floor = migrate_pfn if same else tz.start  # migrate_pfn: end of its block
            while free_pfn >= floor:
                p = free_pfn
                pb = p >> PAGEBLOCK_ORDER
                free_pfn -= PAGEBLOCK_PAGES
                if use_skip and skip[pb]:
                    continue
                if pb_mt[pb] != MT.MOVABLE and same:
                    continue  # suitable_migration_target
                heads, orders = targets.block(p)
                if heads:
                    for h, ho in zip(heads, orders, strict=True):
                        pa._del(tz, h)
                        free_pages.extend(range(h, h + (1 << ho)))
                    return True
                if use_skip:
                    skip[pb] = 1
            return False

        while True:
            if finished():
                ok = True
                break
            if migrate_pfn >= z.end or (same and free_pfn <= migrate_pfn):
                break
            p, end = migrate_pfn, migrate_pfn + PAGEBLOCK_PAGES
            pb = p >> PAGEBLOCK_ORDER
            migrate_pfn = end
            if use_skip and skip[pb]:
                continue  # isolation_suitable
            if async_direct and pb_mt[pb] != mt:
                continue  # suitable_migration_source
            if async_direct:
                moved = (walk_async(mm, self, p, end, chunk, isolate_free, free_pages)
                         if cand.any_alloc(p, end) else 0)
            else:
                moved = 0
                for src in cand.movable(p, end):
                    if not owners.get(owner[src]):
                        continue
                    self.scanned += 1
                    if src in pinned:
                        self.isolate_failed += 1
                        continue
                    if not free_pages and not isolate_free():
                        moved = -1
                        break
                    migrate(mm, src, free_pages.pop())
                    self.migrated += 1
                    moved += 1
            if moved < 0:
                break
            if not moved and use_skip:
                skip[pb] = 1
        for p in free_pages:  # release unused targets
            st[p] = TAIL
            pa.free_one(tz, p, 0, pb_mt[p >> PAGEBLOCK_ORDER])
        if ok:
            self.successes += 1
            return Result.SUCCESS
        if use_skip:  # the scanners met (or ran dry) without success
            if direct:
                self.flush[z.zid] = True
            else:
                self.reset_skip(z)
        return Result.COMPLETE

    def check(self) -> None:
        """Skip bits are 0/1, deferral state is in range, pinned pages are
        allocated movable pages."""
        if any(b > 1 for b in self.skip):
            raise InvariantError("compaction: a pageblock skip bit is neither 0 nor 1")
        for z, d in zip(self.mm.phys.zones, self.defer, strict=True):
            if not (0 <= d.shift <= COMPACT_MAX_DEFER_SHIFT and 0 <= d.considered <= 1 << d.shift
                    and 0 <= d.order_failed <= NR_ORDERS):
                raise InvariantError(f"compaction: {z.name}: deferral state {d} out of range")
        fr = self.mm.frames
        for p in self.mm.pinned:
            if fr.state[p] != ALLOC or fr.mt[p] != MT.MOVABLE:
                raise InvariantError(f"compaction: pinned pfn {p:#x} is not an allocated "
                                     "movable page")

    def _migrate(self, z: Zone, src: int, dst: int) -> None:
        migrate(self.mm, src, dst)
        self.migrated += 1

    # --- proactive compaction (part of kcompactd) -----------------------------------
    def node_score(self, nid: int) -> int:
        return self.kcompactd.node_score(nid)

    def proactive(self) -> int:
        """One proactive pass over every node that needs it; zones compacted."""
        return self.kcompactd.proactive_all()
