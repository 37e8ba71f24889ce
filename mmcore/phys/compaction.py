"""Memory compaction: a migrate scanner from the zone's start, a free scanner
from its end (or from the end of another zone), migrating movable pages
until a free block of the requested order exists or the scanners meet.

Migration copies the frame's metadata to a free frame, rewrites the mapping
through the owner's rmap callback (``get_pte`` and a PTE write for a
process, the file's page index for page cache), invalidates the TLB entry,
moves the LRU position and frees the source.  Proactive compaction (the
kcompactd side) follows ``fragmentation_score_node`` against
``fragmentation_score_wmark(sysctl_compaction_proactiveness)``.

As Linux, compound pages (THP, 1 GiB) are skipped by the migrate scanner and
free blocks of pageblock order or more are not used as targets.  Differences:
always "sync light" (every pageblock is a migration source, no skip hints,
no deferral), migration never fails once a target is found, and a source
zone may send its pages to a different target zone (Contiguitas evacuates
the unmovable region that way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import MT, NR_ORDERS, PAGEBLOCK_ORDER, PAGEBLOCK_PAGES
from mmcore.phys.buddy import ALLOC, BUDDY, TAIL
from mmcore.phys.fragmentation import (
    fragmentation_score_node,
    fragmentation_score_wmark,
    fragmentation_score_zone,
)
from mmcore.phys.physmem import Zone

if TYPE_CHECKING:
    from mmcore.mm import MM


class Compactor:
    def __init__(self, mm: MM, proactiveness: int = 20) -> None:
        self.mm = mm
        self.proactiveness = proactiveness
        self.runs = 0
        self.successes = 0
        self.migrated = 0
        self.proactive_runs = 0
        self.scanned = 0

    def direct(self, z: Zone, order: int) -> bool:
        return self.compact_zone(z, order)

    def compact_zone(
        self, z: Zone, order: int, target: Zone | None = None, proactive: bool = False
    ) -> bool:
        """Compact ``z`` for a block of ``order`` (-1: proactive/whole zone).

        With ``target``, movable pages go to free pages of that zone instead.
        Returns True when the goal was reached.
        """
        mm = self.mm
        pa, fr = mm.pa, mm.frames
        tz = target if target is not None else z
        if not z.managed or not tz.managed:
            return False
        self.runs += 1
        pa.drain_all([z, tz])
        st, ordr, fmt, owner = fr.state, fr.order, fr.mt, fr.owner
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

        def isolate_free() -> bool:
            nonlocal free_pfn
            floor = migrate_pfn if same else tz.start  # migrate_pfn: end of its block
            while free_pfn >= floor:
                p, end = free_pfn, free_pfn + PAGEBLOCK_PAGES
                free_pfn -= PAGEBLOCK_PAGES
                if fr.pb_mt[p >> PAGEBLOCK_ORDER] != MT.MOVABLE and same:
                    continue  # suitable_migration_target
                while p < end:
                    s, o = st[p], ordr[p]
                    if s == BUDDY and o < PAGEBLOCK_ORDER:
                        pa._del(tz, p)
                        free_pages.extend(range(p, p + (1 << o)))
                    p += 1 << o if s in (BUDDY, ALLOC) else 1
                if free_pages:
                    return True
            return False

        while True:
            if finished():
                ok = True
                break
            if migrate_pfn >= z.end or (same and free_pfn <= migrate_pfn):
                break
            p, end = migrate_pfn, migrate_pfn + PAGEBLOCK_PAGES
            migrate_pfn = end
            stuck = False
            while p < end:
                s, o = st[p], ordr[p]
                if s == ALLOC and o == 0 and fmt[p] == MT.MOVABLE and mm.owners.get(owner[p]):
                    self.scanned += 1
                    if not free_pages and not isolate_free():
                        stuck = True
                        break
                    self._migrate(z, p, free_pages.pop())
                p += 1 << o if s in (BUDDY, ALLOC) else 1
            if stuck:
                break
        for p in free_pages:  # release unused targets
            st[p] = TAIL
            pa.free_one(tz, p, 0, fr.pb_mt[p >> PAGEBLOCK_ORDER])
        if ok:
            self.successes += 1
        return ok

    def _migrate(self, z: Zone, src: int, dst: int) -> None:
        mm = self.mm
        fr, pa = mm.frames, mm.pa
        index = fr.index[src]
        pa.prep(dst, 0, fr.mt[src], fr.owner[src], index)
        mm.owners[fr.owner[src]].remap(src, dst, index, 0)
        if fr.lru[src]:
            mm.lru.replace(src, dst)
        fr.owner[src] = 0
        fr.state[src] = TAIL
        pa.free_one(z, src, 0, fr.pb_mt[src >> PAGEBLOCK_ORDER])
        self.migrated += 1

    # --- proactive compaction (kcompactd) -----------------------------------
    def node_score(self, nid: int) -> int:
        node = self.mm.phys.nodes[nid]
        zones = [(z.managed, z.nr_free) for z in node.zones if z.managed]
        return fragmentation_score_node(zones, node.end - node.start)

    def should_proactive_compact(self, nid: int) -> bool:
        if not self.proactiveness or nid in self.mm.reclaim.pending:
            return False
        return self.node_score(nid) > fragmentation_score_wmark(self.proactiveness, False)

    def proactive(self) -> int:
        """One kcompactd pass over every node; return zones compacted."""
        n = 0
        for node in self.mm.phys.nodes:
            if self.should_proactive_compact(node.nid):
                for z in node.zones:
                    if z.managed:
                        self.proactive_runs += 1
                        self.compact_zone(z, -1, proactive=True)
                        n += 1
        return n
