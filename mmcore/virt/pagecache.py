"""The page cache: files whose pages are read into memory on demand.

Each file keeps a compact ``array`` of pfns indexed by page (-1: not cached);
pages join the inactive file LRU and are promoted by ``mark_page_accessed``'s
two-touch rule (PG_referenced, then active).  Pages are clean: eviction drops
them, leaving a shadow entry when workingset detection is on (the "cost"
scan balance): a read that refaults within the workingset size goes
straight to the active list (:mod:`mmcore.virt.workingset`).
Differences from Linux: files are read and written through syscalls only
(no mmap of files), there is no readahead and no dirty writeback.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import numpy as np

from mmcore.sources import Source
from mmcore.virt.lru import LruList, lid_of

if TYPE_CHECKING:
    from mmcore.mm import MM


class File:
    def __init__(self, mm: MM, fid: int, npages: int, home_node: int = 0) -> None:
        self.mm, self.fid, self.owner_id, self.home_node = mm, fid, fid, home_node
        self.npages = npages
        self.pages = array("i", [-1]) * npages
        self.cached = 0
        self.shadows: dict[int, int] = {}  # index -> nonresident age at eviction

    def read(self, index: int) -> int:
        """Read page ``index`` through the cache; return its pfn or -1."""
        mm = self.mm
        pfn = self.pages[index]
        if pfn >= 0:
            mm.stats.pagecache_hits += 1
            self.mark_accessed(pfn)
            return pfn
        mm.stats.pagecache_misses += 1
        pfn = mm.alloc(0, Source.FILE, self.fid, index, self.home_node)
        if pfn < 0:
            return -1
        self.pages[index] = pfn
        self.cached += 1
        nid = mm.phys.zone_of(pfn).nid
        shadow = self.shadows.pop(index, None) if self.shadows else None
        if shadow is not None and mm.workingset.refault(nid, shadow):
            mm.lru.add(pfn, lid_of(nid, LruList.ACTIVE_FILE))
        else:
            mm.lru.add(pfn, lid_of(nid, LruList.INACTIVE_FILE))
        self.mark_accessed(pfn)  # filemap_read marks every page it copies
        return pfn

    def mark_accessed(self, pfn: int) -> None:
        fr, lru = self.mm.frames, self.mm.lru
        lid = fr.lru[pfn] - 1
        if fr.ref[pfn] and lid % 4 == LruList.INACTIVE_FILE:
            lru.move(pfn, lid + 1)
            fr.ref[pfn] = 0
            ws = self.mm.workingset
            if ws.enabled:
                ws.activation(lid // 4)
        else:
            fr.ref[pfn] = 1

    def drop(self) -> None:
        """Remove every cached page (file deleted)."""
        for i, pfn in enumerate(self.pages):
            if pfn >= 0:
                self.pages[i] = -1
                self.mm.free(pfn)
        self.cached = 0
        self.shadows.clear()

    # --- rmap callbacks ---------------------------------------------------
    def remap(self, old: int, new: int, index: int, order: int) -> None:
        self.pages[index] = new
        fr = self.mm.frames
        fr.ref[new], fr.ref[old] = fr.ref[old], 0

    def evict(self, pfn: int, index: int, order: int) -> None:
        self.pages[index] = -1
        self.cached -= 1
        self.mm.frames.ref[pfn] = 0
        ws = self.mm.workingset
        if ws.enabled:
            self.shadows[index] = ws.eviction(self.mm.phys.zone_of(pfn).nid)
        self.mm.stats.file_evictions += 1

    def evict_many(self, pfns: np.ndarray, index: np.ndarray,
                   shadows: np.ndarray | None = None) -> None:
        """:meth:`evict` of the pages ``pfns`` at ``index`` (arrays), in
        order; ``shadows``: their shadow entries, when workingset detection
        is on."""
        np.frombuffer(self.pages, dtype=np.int32)[index] = -1
        self.cached -= len(index)
        self.mm.frames.view("ref")[pfns] = 0
        if shadows is not None:
            self.shadows.update(zip(index.tolist(), shadows.tolist(), strict=True))
        self.mm.stats.file_evictions += len(index)

    def referenced(self, pfn: int, index: int) -> bool:
        fr = self.mm.frames
        r = fr.ref[pfn]
        fr.ref[pfn] = 0
        return bool(r)
