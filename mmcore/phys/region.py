"""Regions: physically contiguous, unmovable memory for page-table programs.

A region of ``n`` pages is carved from one buddy block of order
``ceil(log2(n))`` taken as an unmovable allocation (with direct reclaim and
compaction allowed); the tail beyond ``n`` pages goes straight back to the
buddy allocator, as ``alloc_pages_exact`` does.  So a region is exactly ``n``
pages, ``n <= 2**MAX_ORDER``, aligned to its rounded-up power of two.  The
region's bytes live in one ``bytearray`` registered frame by frame in the
:class:`~mmcore.pagetables.pte.TableMemory`.  When no block of that order can be made
free, :class:`~mmcore.errors.RegionError` says how large the largest free
block is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mmcore.constants import ALLOC_DEFAULT, MAX_ORDER, MT, PAGE_SIZE
from mmcore.errors import RegionError
from mmcore.sources import KERNEL_OWNER, Source

if TYPE_CHECKING:
    from mmcore.mm import MM


@dataclass
class Region:
    rid: int
    start: int  # first pfn
    npages: int
    nid: int
    buf: bytearray = field(repr=False)
    blocks: list[int] = field(default_factory=list, repr=False)  # allocated block heads

    @property
    def size(self) -> int:
        return self.npages * PAGE_SIZE


class RegionAllocator:
    def __init__(self, mm: MM) -> None:
        self.mm = mm
        self.regions: dict[int, Region] = {}
        self._next = 1
        self.failures = 0

    def alloc(self, npages: int, nid: int = 0) -> Region:
        if not 0 < npages <= 1 << MAX_ORDER:
            raise RegionError(f"region of {npages} pages: size must be 1..{1 << MAX_ORDER} pages")
        order = (npages - 1).bit_length()
        mm, pa = self.mm, self.mm.pa
        owner = KERNEL_OWNER[Source.REGION]
        pfn = pa.alloc(order, MT.UNMOVABLE, owner, self._next, nid, ALLOC_DEFAULT)
        if pfn < 0:
            self.failures += 1
            largest = max(
                (o for z in mm.phys.zones for o in range(MAX_ORDER + 1) if z.nr_free[o]), default=-1
            )
            raise RegionError(
                f"no physically contiguous run of {npages} pages (an order-{order} block) "
                f"could be made free; the largest free block is order {largest}"
            )
        # re-cut the block into aligned allocated pieces covering npages, free the rest
        fr = mm.frames
        fr.state[pfn] = 0
        region = Region(
            self._next, pfn, npages, mm.phys.zone_of(pfn).nid, bytearray(npages * PAGE_SIZE)
        )
        p, end = pfn, pfn + npages
        while p < end:
            o = min((p & -p).bit_length() - 1 if p else MAX_ORDER, order)
            while p + (1 << o) > end:
                o -= 1
            pa.prep(p, o, MT.UNMOVABLE, owner, region.rid)
            region.blocks.append(p)
            p += 1 << o
        if end < pfn + (1 << order):
            pa.free_range(end, pfn + (1 << order))
        for i in range(npages):
            mm.mem.add(pfn + i, region.buf, i * PAGE_SIZE)
        self.regions[region.rid] = region
        self._next += 1
        return region

    def free(self, region: Region) -> None:
        for i in range(region.npages):
            self.mm.mem.remove(region.start + i)
        for head in region.blocks:
            self.mm.pa.free(head)
        del self.regions[region.rid]

    def pages(self) -> int:
        return sum(r.npages for r in self.regions.values())
