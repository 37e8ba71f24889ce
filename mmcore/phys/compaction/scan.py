"""What the scanners look at in a pageblock, read from the frame arrays a
window of pageblocks at a time with numpy: for the migrate scanner the
order-0 allocated movable frames (the pages it may isolate), for the free
scanner the free blocks below pageblock order (its targets); and the
page-by-page walk ASYNC direct compaction keeps for pageblocks that hold
allocated pages (its ``skip_on_failure`` gives up on whole order-aligned
chunks, which depends on the order of the walk).

Finding a window's candidates ahead of the scan is exact: while the
scanners run, frames in pageblocks the migrate scanner has not reached
change only by merging free blocks (freed sources) or by the free scanner
taking targets from pageblocks the migrate scanner then never enters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import MT, PAGEBLOCK_ORDER, PAGEBLOCK_PAGES
from mmcore.phys.buddy import ALLOC, BUDDY
from mmcore.phys.compaction.migrate import migrate

if TYPE_CHECKING:
    from mmcore.mm import MM

WINDOW = 64 * PAGEBLOCK_PAGES  # frames looked at per numpy pass
_ALLOC, _BUDDY, _MOVABLE = int(ALLOC), int(BUDDY), int(MT.MOVABLE)


class Candidates:
    """Allocated heads and order-0 allocated movable frames of the zone
    [start, end), by pageblock, for a migrate scanner that moves upwards.

    A window is read with a few numpy passes; each pageblock of it then
    costs two list slices (the split points of every pageblock are found
    at once)."""

    def __init__(self, st: np.ndarray, order: np.ndarray, mt: np.ndarray,
                 start: int, end: int) -> None:
        self.st, self.order, self.mt = st, order, mt
        self.end = end
        self.lo = self.hi = start
        self.movable_heads: list[int] = []
        self.movable_cuts: list[int] = []
        self.alloc_cuts: list[int] = []

    def _load(self, p: int) -> None:
        hi = min(p + WINDOW, self.end)
        alloc = np.flatnonzero(self.st[p:hi] == _ALLOC)
        keep = (self.order[p:hi][alloc] == 0) & (self.mt[p:hi][alloc] == _MOVABLE)
        movable = alloc[keep]
        bounds = np.arange(0, hi - p + 1, PAGEBLOCK_PAGES)
        self.movable_heads = (movable + p).tolist()
        self.movable_cuts = np.searchsorted(movable, bounds).tolist()
        self.alloc_cuts = np.searchsorted(alloc, bounds).tolist()
        self.lo, self.hi = p, hi

    def movable(self, p: int, end: int) -> list[int]:
        """Order-0 allocated movable frames of the pageblock [p, end), ascending."""
        if end > self.hi:
            self._load(p)
        k = (p - self.lo) >> PAGEBLOCK_ORDER
        cuts = self.movable_cuts
        return self.movable_heads[cuts[k]:cuts[k + 1]]

    def any_alloc(self, p: int, end: int) -> bool:
        """Whether the pageblock [p, end) holds the head of an allocated block."""
        if end > self.hi:
            self._load(p)
        k = (p - self.lo) >> PAGEBLOCK_ORDER
        return self.alloc_cuts[k + 1] > self.alloc_cuts[k]


class FreeTargets:
    """Free blocks below pageblock order (isolation targets) of the zone
    [start, end), by pageblock, for a free scanner that moves downwards: a
    window of pageblocks read at once, as :class:`Candidates`.  Exact: the
    free scanner's pageblocks change only when it takes their pages (each
    once), and freed source pages merge into blocks of pageblock order or
    more only (never targets) beyond their own pageblock."""

    def __init__(self, st: np.ndarray, order: np.ndarray, start: int, end: int) -> None:
        self.st, self.order = st, order
        self.start = start
        self.lo = self.hi = end
        self.heads: list[int] = []
        self.orders: list[int] = []
        self.cuts: list[int] = []

    def _load(self, end: int) -> None:
        lo = max(end - WINDOW, self.start)
        o = self.order[lo:end]
        found = np.flatnonzero((self.st[lo:end] == _BUDDY) & (o < PAGEBLOCK_ORDER))
        self.heads = (found + lo).tolist()
        self.orders = o[found].tolist()
        self.cuts = np.searchsorted(found, np.arange(0, end - lo + 1, PAGEBLOCK_PAGES)).tolist()
        self.lo, self.hi = lo, end

    def block(self, p: int) -> tuple[list[int], list[int]]:
        """Heads and orders of the target blocks in the pageblock at ``p``."""
        if p < self.lo:
            self._load(p + PAGEBLOCK_PAGES)
        k = (p - self.lo) >> PAGEBLOCK_ORDER
        i, j = self.cuts[k], self.cuts[k + 1]
        return self.heads[i:j], self.orders[i:j]


def walk_async(mm: MM, stats: object, p: int, end: int, chunk: int,
               isolate_free: Callable[[], bool], free_pages: list[int]) -> int:
    """Scan the source pageblock [p, end) as ASYNC direct compaction does:
    an order-aligned chunk holding a page isolation must fail on (allocated
    and of order > 0, non-movable, pinned or without an owner that can remap
    it) is skipped whole and counted in ``stats.isolate_failed``.  Return
    the pages migrated, or -1 when the free scanner found no target."""
    fr = mm.frames
    st, ordr, fmt, owner = fr.state, fr.order, fr.mt, fr.owner
    owners, pinned = mm.owners, mm.pinned

    def chunk_blocked(q: int, stop: int) -> bool:
        while q < stop:
            s, o = st[q], ordr[q]
            if s == ALLOC and (o or fmt[q] != MT.MOVABLE or q in pinned
                               or not owners.get(owner[q])):
                return True
            q += 1 << o if s in (BUDDY, ALLOC) else 1
        return False

    moved = 0
    chunk_end = p
    while p < end:
        if p >= chunk_end:
            chunk_end = p + chunk
            if chunk_blocked(p, chunk_end):
                stats.isolate_failed += 1  # type: ignore[attr-defined]
                p = chunk_end
                continue
        s, o = st[p], ordr[p]
        if s == ALLOC and o == 0 and fmt[p] == MT.MOVABLE and owners.get(owner[p]):
            stats.scanned += 1  # type: ignore[attr-defined]
            if p in pinned:
                stats.isolate_failed += 1  # type: ignore[attr-defined]
            else:
                if not free_pages and not isolate_free():
                    return -1
                migrate(mm, p, free_pages.pop())
                stats.migrated += 1  # type: ignore[attr-defined]
                moved += 1
        p += 1 << o if s in (BUDDY, ALLOC) else 1
    return moved
