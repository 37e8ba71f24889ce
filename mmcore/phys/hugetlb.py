"""The hugetlb pool of 1 GiB pages (``mm/hugetlb.c``): pages reserved at
boot (``hugepagesz=1G hugepages=N``), grown and shrunk at run time by
writes to ``nr_hugepages`` and, up to ``nr_overcommit_hugepages``, by
surplus pages allocated on demand at fault time.

A run-time page comes from an ``alloc_contig_range``-style allocation
(``alloc_gigantic_folio`` → ``alloc_contig_pages``): the first 1 GiB
aligned range of an eligible zone that holds no unmovable page and no pool
page (``pfn_range_valid_contig``, ``has_unmovable_pages``) is isolated
(its free blocks leave the free lists), every movable page in it is
migrated out (THPs as a unit into a free order-9 block), and the range
becomes one pool page.  A pinned page, a page whose owner cannot remap it
or a missing migration target fails the range and the next range is tried
(the range's free blocks go back to the free lists).

Pool pages are allocated blocks owned by :data:`HUGETLB_OWNER` while free
in the pool, by the faulting process while mapped; they are never on the
buddy free lists or an LRU, and never reclaimed.  Freeing a surplus page
gives it back to the buddy allocator.  As Linux (``hugepage_movable_supported``
is false for gigantic pages), pool pages come from zones a non-movable
allocation may use unless ``movable`` is set (the Contiguitas design puts
them in its movable region).

Differences from Linux: no reservations (``resv_huge_pages``) — a fault
takes a page or falls back to a smaller size instead of SIGBUS; boot pages
are taken from the buddy allocator before the workload (not memblock);
migration targets are allocated without reclaim or compaction, all
before the first page moves, so a failing range moves nothing (Linux
migrates the pages before the one that fails); the pool
is per node but a fault takes from any node, home first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import MT, ORDER_1G, PAGEBLOCK_ORDER, FrameState
from mmcore.errors import InvariantError
from mmcore.phys.compaction.migrate import migrate
from mmcore.phys.physmem import Zone
from mmcore.sources import FIRST_DYNAMIC_OWNER

if TYPE_CHECKING:
    from mmcore.mm import MM

HUGETLB_OWNER = FIRST_DYNAMIC_OWNER - 1  # owner of the pool's free pages
GIGANTIC = 1 << ORDER_1G


class HugetlbPool:
    def __init__(self, mm: MM, boot_pages: int = 0, overcommit: int = 0,
                 movable: bool = False) -> None:
        self.mm = mm
        self.overcommit = overcommit  # nr_overcommit_hugepages
        self.movable = movable
        n = len(mm.phys.nodes)
        self.pages: set[int] = set()  # head pfns of every pool page
        self.free: list[list[int]] = [[] for _ in range(n)]  # per node
        self.surplus = [0] * n
        self.grown = 0  # pages made by alloc_contig at run time
        self.grow_failed = 0  # requests no range could satisfy
        self.ranges_failed = 0  # ranges tried and given up
        self.migrated = 0  # pages migrated out of ranges
        self.faults = 0  # 1 GiB faults served by the pool
        self.fault_misses = 0  # 1 GiB faults the pool could not serve
        self._next_nid = 0
        mm.owners[HUGETLB_OWNER] = None
        for _ in range(boot_pages):
            if not self._boot_one():
                break

    # --- sizes -------------------------------------------------------------
    def nr_hugepages(self) -> int:
        return len(self.pages)

    def free_count(self, nid: int | None = None) -> int:
        if nid is None:
            return sum(len(f) for f in self.free)
        return len(self.free[nid])

    def zones(self, nid: int) -> list[Zone]:
        node = self.mm.phys.nodes[nid]
        return [node.movable, node.normal] if self.movable else [node.normal]

    def _nid_of(self, pfn: int) -> int:
        return self.mm.phys.zone_of(pfn).nid

    def _round_robin(self) -> list[int]:
        """``for_each_node_mask_to_alloc``: nodes starting at the next one."""
        n = len(self.free)
        first, self._next_nid = self._next_nid, (self._next_nid + 1) % n
        return [(first + i) % n for i in range(n)]

    def _enqueue(self, pfn: int) -> None:
        self.mm.pa.prep(pfn, ORDER_1G, MT.MOVABLE, HUGETLB_OWNER, 0)
        self.pages.add(pfn)
        self.free[self._nid_of(pfn)].append(pfn)

    def _boot_one(self) -> bool:
        for nid in self._round_robin():
            for z in self.zones(nid):
                pfn = self.mm.pa.rmqueue_smallest(z, ORDER_1G, MT.MOVABLE)
                if pfn >= 0:
                    self._enqueue(pfn)
                    return True
        return False

    def set_nr_hugepages(self, count: int) -> int:
        """A write to ``nr_hugepages``: grow by alloc_contig (stopping at the
        first failure) or give free pages back; return the new size."""
        while self.nr_hugepages() < count:
            if self.grow() < 0:
                break
        for nid in range(len(self.free)):
            self.surplus[nid] = 0  # persistent now (set_max_huge_pages)
        while self.nr_hugepages() > count and self.free_count():
            nid = max(range(len(self.free)), key=lambda n: len(self.free[n]))
            self._release(self.free[nid].pop())
        return self.nr_hugepages()

    def _release(self, pfn: int) -> None:
        self.pages.discard(pfn)
        self.mm.pa.free(pfn)

    def grow(self) -> int:
        """``alloc_pool_huge_folio``: one new free pool page; its pfn or -1."""
        for nid in self._round_robin():
            pfn = self.alloc_contig(nid)
            if pfn >= 0:
                self._enqueue(pfn)
                self.grown += 1
                return pfn
        self.grow_failed += 1
        return -1

    # --- alloc_contig_range ------------------------------------------------------
    def alloc_contig(self, nid: int) -> int:
        """``alloc_contig_pages`` on ``nid``: a free aligned 1 GiB range, off
        the free lists, or -1."""
        for z in self.zones(nid):
            base = (z.start + GIGANTIC - 1) & -GIGANTIC
            while base + GIGANTIC <= z.end:
                if self._valid_range(base) and self._take_range(z, base):
                    return base
                base += GIGANTIC
        return -1

    def _valid_range(self, base: int) -> bool:
        """``pfn_range_valid_contig`` and ``has_unmovable_pages``."""
        fr = self.mm.frames
        if base in self.pages:
            return False
        st = fr.view("state")[base:base + GIGANTIC]
        heads = np.nonzero(st == FrameState.ALLOC)[0]
        if not heads.size:
            return True
        mts = fr.view("mt")[base + heads]
        owners = fr.view("owner")[base + heads]
        return not ((mts != MT.MOVABLE).any() or (owners == HUGETLB_OWNER).any())

    def _take_range(self, z: Zone, base: int) -> bool:
        mm = self.mm
        pa, fr = mm.pa, mm.frames
        end = base + GIGANTIC
        pa.drain_all([z])
        taken = pa.take_range(z, base, end)  # start_isolate_page_range
        st = fr.view("state")[base:end]
        heads = (np.nonzero(st == FrameState.ALLOC)[0] + base).tolist()
        targets: list[int] = []
        ok = True
        for src in heads:  # the targets first, so none comes from inside the range
            if not mm.owners.get(fr.owner[src]) or src in mm.pinned:
                ok = False  # cannot be migrated: the range fails
                break
            dst = pa.alloc(fr.order[src], MT.MOVABLE, HUGETLB_OWNER, 0, nid=z.nid, flags=0)
            if dst < 0:
                ok = False
                break
            targets.append(dst)
        if not ok:
            for dst in targets:
                pa.free(dst)
            for lo, hi in taken:
                pa.free_range(lo, hi)
            self.ranges_failed += 1
            return False
        for src, dst in zip(heads, targets, strict=True):
            fr.state[dst] = FrameState.TAIL
            migrate(mm, src, dst)
            self.migrated += 1
        rest = pa.take_range(z, base, end)  # the migrated pages' frames, freed
        if sum(hi - lo for lo, hi in taken + rest) != GIGANTIC:
            raise InvariantError(f"alloc_contig at {base:#x}: range not wholly free")
        for pb in range(base >> PAGEBLOCK_ORDER, end >> PAGEBLOCK_ORDER):
            fr.pb_mt[pb] = MT.MOVABLE
        return True

    # --- faults and frees -----------------------------------------------------
    def alloc_page(self, nid: int, owner: int, index: int) -> int:
        """``alloc_hugetlb_folio``: a free pool page (home node first), else a
        surplus page while ``nr_overcommit_hugepages`` allows; -1 if none."""
        n = len(self.free)
        pfn = -1
        for i in range(n):
            lst = self.free[(nid + i) % n]
            if lst:
                pfn = lst.pop()
                break
        if pfn < 0 and sum(self.surplus) < self.overcommit:
            pfn = self.alloc_contig(nid)
            if pfn >= 0:
                self._add_surplus(pfn)
        if pfn < 0:
            self.fault_misses += 1
            return -1
        self.faults += 1
        self.mm.pa.prep(pfn, ORDER_1G, MT.MOVABLE, owner, index)
        return pfn

    def _add_surplus(self, pfn: int) -> None:
        self.pages.add(pfn)
        self.surplus[self._nid_of(pfn)] += 1
        self.grown += 1

    def free_page(self, pfn: int) -> None:
        """``free_huge_folio``: back to the pool, or to the buddy allocator
        if the node has surplus pages."""
        nid = self._nid_of(pfn)
        if self.surplus[nid]:
            self.surplus[nid] -= 1
            self.mm.frames.owner[pfn] = HUGETLB_OWNER
            self._release(pfn)
            return
        self.mm.pa.prep(pfn, ORDER_1G, MT.MOVABLE, HUGETLB_OWNER, 0)
        self.free[nid].append(pfn)

    # --- checks and metrics ------------------------------------------------------
    def check(self) -> None:
        """Pool accounting: every pool page is an allocated order-18 block,
        off the LRU, owned by the pool exactly when it is on a free list,
        else by a live process; surplus pages are at most the pool."""
        fr, mm = self.mm.frames, self.mm
        listed = [p for lst in self.free for p in lst]
        if len(set(listed)) != len(listed) or not set(listed) <= self.pages:
            raise InvariantError("hugetlb: a free-list page is listed twice or not in the pool")
        for nid, lst in enumerate(self.free):
            for p in lst:
                if self._nid_of(p) != nid:
                    raise InvariantError(f"hugetlb: pfn {p:#x} on node {nid}'s free list")
        free = set(listed)
        for p in self.pages:
            if fr.state[p] != FrameState.ALLOC or fr.order[p] != ORDER_1G or fr.lru[p]:
                raise InvariantError(f"hugetlb: pool page {p:#x} is not an allocated "
                                     "order-18 block off the LRU")
            if (fr.owner[p] == HUGETLB_OWNER) != (p in free):
                raise InvariantError(f"hugetlb: pool page {p:#x} owner {fr.owner[p]} does "
                                     "not match its free-list membership")
            if p not in free and fr.owner[p] not in mm.procs:
                raise InvariantError(f"hugetlb: in-use pool page {p:#x} has no live owner")
        if sum(self.surplus) > len(self.pages):
            raise InvariantError("hugetlb: more surplus pages than pool pages")

    def metrics(self) -> dict[str, int]:
        return {
            "nr_hugepages": self.nr_hugepages(), "free": self.free_count(),
            "surplus": sum(self.surplus), "grown": self.grown,
            "grow_failed": self.grow_failed, "ranges_failed": self.ranges_failed,
            "pages_migrated": self.migrated, "faults": self.faults,
            "fault_misses": self.fault_misses,
        }
