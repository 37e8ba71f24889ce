"""Kernel allocations: slab (reclaimable and unmovable), network buffers and
their lifetimes.

Each allocation is a block owned by its source's kernel owner id, its frame
``index`` a unique sequence number; a heap orders live allocations by expiry
tick.  The lifetime hook may steer a slab/netbuf allocation to reclaimable
(short-lived) or unmovable (long-lived) pageblocks.  Reclaim shrinks
reclaimable slab oldest first, as a shrinker would.  Page-table pages are
allocated by the page tables themselves.  Differences from Linux: these
slab allocations are whole pages without objects (a slab page lives as long
as the allocation); :mod:`mmcore.phys.slab` models slab objects.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from mmcore.constants import MT, FrameState
from mmcore.sources import KERNEL_OWNER, SOURCES, Source

if TYPE_CHECKING:
    from mmcore.hooks.inplace import LifetimeContext
    from mmcore.mm import MM

LIFETIME_MT = (None, MT.RECLAIMABLE, MT.UNMOVABLE)  # lifetime class -> migratetype


class KernelAllocs:
    lifetime: LifetimeContext  # the lifetime hook's context writer, set by the MM core

    def __init__(self, mm: MM) -> None:
        self.mm = mm
        self.heap: list[tuple[int, int, int]] = []  # (expiry tick, seq, pfn)
        self.reclaimable: dict[int, int] = {}  # seq -> pfn, oldest first
        self.seq = 0
        self.pages = [0] * len(SOURCES)
        self.failures = 0
        self._owners = frozenset(
            KERNEL_OWNER[s] for s in (Source.SLAB_RECLAIMABLE, Source.SLAB_UNMOVABLE, Source.NETBUF)
        )

    def alloc(self, source: Source, order: int, lifetime: int, site: int = 0, nid: int = 0) -> int:
        mm = self.mm
        info = SOURCES[source]
        klass = self.lifetime.decide(source, order, site)
        mt = LIFETIME_MT[klass] if klass else info.mt
        self.seq += 1
        pfn = mm.pa.alloc(order, mt, KERNEL_OWNER[source], self.seq, nid, info.flags)
        if pfn < 0:
            self.failures += 1
            return -1
        self.pages[source] += 1 << order
        heapq.heappush(self.heap, (mm.tick + max(1, lifetime), self.seq, pfn))
        if source == Source.SLAB_RECLAIMABLE:
            self.reclaimable[self.seq] = pfn
        return pfn

    def _alive(self, seq: int, pfn: int) -> bool:
        fr = self.mm.frames
        return (
            fr.state[pfn] == FrameState.ALLOC
            and fr.get_index(pfn) == seq
            and fr.owner[pfn] in self._owners
        )

    def _free(self, seq: int, pfn: int) -> None:
        fr = self.mm.frames
        source = fr.owner[pfn] - 1
        self.pages[source] -= 1 << fr.order[pfn]
        self.reclaimable.pop(seq, None)
        self.mm.pa.free(pfn)

    def expire(self, now: int) -> int:
        """Free every allocation whose lifetime ended by ``now``."""
        n = 0
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, seq, pfn = heapq.heappop(heap)
            if self._alive(seq, pfn):
                self._free(seq, pfn)
                n += 1
        return n

    def shrink(self, nr_pages: int) -> int:
        """Free up to ``nr_pages`` of reclaimable slab, oldest first."""
        freed = 0
        while freed < nr_pages and self.reclaimable:
            seq, pfn = next(iter(self.reclaimable.items()))
            freed += 1 << self.mm.frames.order[pfn]
            self._free(seq, pfn)
        return freed

    def live_pages(self) -> int:
        return sum(self.pages)
