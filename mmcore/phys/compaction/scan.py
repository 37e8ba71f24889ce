"""What the migrate scanner looks at in a source pageblock, read from the
frame arrays: the order-0 allocated movable frames (the pages it may
isolate), found with numpy a window of pageblocks at a time, and the
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

from mmcore.constants import MT, PAGEBLOCK_PAGES
from mmcore.phys.buddy import ALLOC, BUDDY
from mmcore.phys.compaction.migrate import migrate

if TYPE_CHECKING:
    from mmcore.mm import MM

WINDOW = 64 * PAGEBLOCK_PAGES  # frames looked at per numpy pass
_ALLOC, _MOVABLE = int(ALLOC), int(MT.MOVABLE)


class Candidates:
    """Allocated heads and order-0 allocated movable frames of the zone
    [start, end), by pageblock, for a migrate scanner that moves upwards."""

    def __init__(self, st: np.ndarray, order: np.ndarray, mt: np.ndarray,
                 start: int, end: int) -> None:
        self.st, self.order, self.mt = st, order, mt
        self.end = end
        self.hi = start
        self.alloc = self.movable_heads = np.empty(0, dtype=np.int64)

    def _load(self, p: int) -> None:
        hi = min(p + WINDOW, self.end)
        alloc = self.st[p:hi] == _ALLOC
        self.alloc = np.flatnonzero(alloc) + p
        rel = self.alloc - p
        keep = (self.order[p:hi][rel] == 0) & (self.mt[p:hi][rel] == _MOVABLE)
        self.movable_heads = self.alloc[keep]
        self.hi = hi

    def movable(self, p: int, end: int) -> list[int]:
        """Order-0 allocated movable frames in [p, end), ascending."""
        if end > self.hi:
            self._load(p)
        m = self.movable_heads
        return m[np.searchsorted(m, p):np.searchsorted(m, end)].tolist()

    def any_alloc(self, p: int, end: int) -> bool:
        """Whether [p, end) holds the head of an allocated block."""
        if end > self.hi:
            self._load(p)
        a = self.alloc
        return int(np.searchsorted(a, end)) > int(np.searchsorted(a, p))


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
