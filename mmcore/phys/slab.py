"""SLUB-like slab caches: kernel objects packed into slabs of order-N pages.

Each cache has an object size and a slab order as SLUB's
``calculate_order`` gives them (``slub_min_objects`` from 8 CPUs,
``slub_max_order`` = ``PAGE_ALLOC_COSTLY_ORDER``), and per node a partial,
a full and a free (empty) slab list.  An allocation takes an object from
the first partial slab, else an empty one, else a new slab page (order N;
MIGRATE_UNMOVABLE for ``kmalloc-*``, MIGRATE_RECLAIMABLE for caches created
with ``SLAB_RECLAIM_ACCOUNT``: dentry, inode, radix_tree_node).  Freeing an
object moves its slab from full to partial; a slab whose last object goes
stays on the free list while the node keeps fewer than ``min_partial``
slabs there (``__slab_free``), else its pages return to the buddy
allocator.  So a few long-lived objects keep whole slab pages, scattered
wherever their slabs were carved, alive.

Shrinkers (``do_shrink_slab``) free objects of the reclaimable caches,
oldest first (a ``list_lru``), in proportion to the LRU pages reclaim
scanned, carrying what they did not scan in ``nr_deferred``; pages come back
only when slabs empty.  A slab page's frame is owned by its source's kernel
owner, its ``index`` the negative cache handle (``-1 - cache id``).

Differences from Linux: no per-cpu slabs or per-cpu partial lists; objects
are counted, not placed (an object's slot in its slab is not tracked); no
red zones or alignment padding (the object size is the slab stride); the
shrinker pressure is the pre-6.0 ``do_shrink_slab`` form (scanned LRU pages
/ eligible LRU pages), not the priority-based one; shrinkers are not
NUMA-aware; dentries are pruned without a referenced-bit rotation.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from mmcore.constants import COSTLY_ORDER, MT, PAGE_SIZE, FrameState
from mmcore.sources import KERNEL_OWNER, Source

if TYPE_CHECKING:
    from mmcore.mm import MM

KMALLOC_SIZES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
# (name, object size, SLAB_RECLAIM_ACCOUNT); sizes as x86-64 slabinfo shows them
NAMED_CACHES = (("dentry", 192, True), ("inode_cache", 608, True),
                ("radix_tree_node", 576, True))
CACHE_NAMES = tuple(
    f"kmalloc-{s if s < 1024 else str(s // 1024) + 'k'}" for s in KMALLOC_SIZES
) + tuple(name for name, _, _ in NAMED_CACHES)
MIN_PARTIAL, MAX_PARTIAL = 5, 10
NR_CPUS = 8
MAX_OBJS_PER_PAGE = 32767
DEFAULT_SEEKS = 2
SHRINK_BATCH = 128


def _get_order(size: int) -> int:
    """``get_order``: the smallest order whose block holds ``size`` bytes."""
    order = 0
    while PAGE_SIZE << order < size:
        order += 1
    return order


def calculate_order(size: int, nr_cpus: int = NR_CPUS, max_order: int = COSTLY_ORDER) -> int:
    """SLUB's ``calculate_order`` (``slub_min_order`` 0, no boot overrides)."""
    min_objects = 4 * (nr_cpus.bit_length() + 1)  # 4 * (fls(nr_cpus) + 1)
    max_objects = max((PAGE_SIZE << max_order) // size, 1)
    min_objects = min(min_objects, max_objects)
    min_order = _get_order(min_objects * size)
    if (PAGE_SIZE << min_order) // size > MAX_OBJS_PER_PAGE:
        return _get_order(size * MAX_OBJS_PER_PAGE) - 1
    fraction = 16
    while fraction > 1:  # calc_slab_order with a shrinking leftover bound
        for order in range(min_order, max_order + 1):
            slab = PAGE_SIZE << order
            if slab % size <= slab // fraction:
                return order
        fraction //= 2
    return _get_order(size)


class SlabCache:
    """One ``kmem_cache``: object size, slab order and the per-node lists.

    ``inuse`` maps every slab's pfn to its objects in use; per node,
    ``partial`` (oldest first) and ``full`` hold slabs with some / all
    objects in use, ``empty`` slabs with none."""

    def __init__(self, cid: int, name: str, size: int, reclaimable: bool, nodes: int) -> None:
        self.cid, self.name, self.size, self.reclaimable = cid, name, size, reclaimable
        self.order = calculate_order(size)
        self.objects = (PAGE_SIZE << self.order) // size  # per slab
        self.min_partial = max(MIN_PARTIAL, min(MAX_PARTIAL, (size.bit_length() - 1) // 2))
        self.source = Source.SLAB_RECLAIMABLE if reclaimable else Source.SLAB_UNMOVABLE
        self.mt = int(MT.RECLAIMABLE if reclaimable else MT.UNMOVABLE)
        self.handle = -1 - cid  # the frame index of its slab pages
        self.inuse: dict[int, int] = {}
        self.partial: list[dict[int, None]] = [{} for _ in range(nodes)]
        self.full: list[set[int]] = [set() for _ in range(nodes)]
        self.empty: list[list[int]] = [[] for _ in range(nodes)]
        self.node_of: dict[int, int] = {}
        self.nr_objects = 0  # objects in use
        self.lru: dict[int, None] = {}  # live object ids, oldest first (reclaimable caches)
        self.nr_deferred = 0  # shrinker work carried to the next call

    def slabs(self) -> int:
        return len(self.inuse)


class SlabAllocator:
    """Every slab cache of the machine, the live objects and their expiry."""

    def __init__(self, mm: MM) -> None:
        self.mm = mm
        nodes = len(mm.phys.nodes)
        kmalloc = [(n, s, False) for n, s in zip(CACHE_NAMES, KMALLOC_SIZES, strict=False)]
        specs = kmalloc + list(NAMED_CACHES)
        self.caches = [SlabCache(i, n, s, r, nodes) for i, (n, s, r) in enumerate(specs)]
        self.by_name = {c.name: c for c in self.caches}
        self.objects: dict[int, tuple[SlabCache, int]] = {}  # object id -> (cache, slab pfn)
        self.heap: list[tuple[int, int]] = []  # (expiry tick, object id)
        self.seq = 0
        self.failures = 0
        self.shrunk = 0  # objects freed by shrinkers
        self.pages_freed = 0  # slab pages returned to the buddy allocator

    # --- objects ------------------------------------------------------------
    def alloc(self, cache: SlabCache, lifetime: int, nid: int = 0) -> int:
        """``kmem_cache_alloc_node``: an object living ``lifetime`` ticks;
        its id, or -1 when no slab page could be had."""
        partial = cache.partial[nid]
        if partial:
            pfn = next(iter(partial))
        elif cache.empty[nid]:
            pfn = cache.empty[nid].pop()
            partial[pfn] = None
        else:
            pfn = self._new_slab(cache, nid)
            if pfn < 0:
                self.failures += 1
                return -1
            partial[pfn] = None
        n = cache.inuse[pfn] + 1
        cache.inuse[pfn] = n
        if n == cache.objects:
            del partial[pfn]
            cache.full[nid].add(pfn)
        cache.nr_objects += 1
        self.seq += 1
        oid = self.seq
        self.objects[oid] = (cache, pfn)
        if cache.reclaimable:
            cache.lru[oid] = None
        heapq.heappush(self.heap, (self.mm.tick + max(1, lifetime), oid))
        return oid

    def _new_slab(self, cache: SlabCache, nid: int) -> int:
        mm = self.mm
        pfn = mm.pa.alloc(cache.order, cache.mt, KERNEL_OWNER[cache.source], cache.handle, nid)
        if pfn < 0:
            return -1
        cache.inuse[pfn] = 0
        cache.node_of[pfn] = nid
        mm.kernel.pages[cache.source] += 1 << cache.order
        return pfn

    def free(self, oid: int) -> int:
        """``kmem_cache_free``; the slab pages returned to the buddy allocator."""
        cache, pfn = self.objects.pop(oid)
        cache.lru.pop(oid, None)
        cache.nr_objects -= 1
        n = cache.inuse[pfn]
        nid = cache.node_of[pfn]
        if n == cache.objects:
            cache.full[nid].discard(pfn)
            cache.partial[nid][pfn] = None
        n -= 1
        cache.inuse[pfn] = n
        if n:
            return 0
        del cache.partial[nid][pfn]
        if len(cache.empty[nid]) < cache.min_partial:
            cache.empty[nid].append(pfn)
            return 0
        return self._discard(cache, pfn)

    def _discard(self, cache: SlabCache, pfn: int) -> int:
        """``discard_slab``: the slab's pages back to the buddy allocator."""
        del cache.inuse[pfn]
        del cache.node_of[pfn]
        self.mm.kernel.pages[cache.source] -= 1 << cache.order
        self.mm.pa.free(pfn)
        self.pages_freed += 1 << cache.order
        return 1 << cache.order

    def expire(self, now: int) -> int:
        """Free every object whose lifetime ended by ``now``; pages freed."""
        freed = 0
        heap, objects = self.heap, self.objects
        while heap and heap[0][0] <= now:
            _, oid = heapq.heappop(heap)
            if oid in objects:
                freed += self.free(oid)
        return freed

    # --- shrinkers ------------------------------------------------------------
    def shrink(self, scanned: int, eligible: int) -> int:
        """``shrink_slab``: run every reclaimable cache's shrinker for a
        reclaim pass that scanned ``scanned`` of ``eligible`` LRU pages (no
        eligible page: the whole pressure of priority 0); pages freed."""
        return sum(self.do_shrink(c, scanned, eligible) for c in self.caches if c.reclaimable)

    def do_shrink(self, cache: SlabCache, scanned: int, eligible: int) -> int:
        """``do_shrink_slab`` for one cache: scan ``nr_deferred`` + a share
        of its objects proportional to the LRU pressure, in batches of
        ``SHRINK_BATCH``, at most twice the freeable objects; defer the rest."""
        freeable = len(cache.lru)
        if not freeable:
            return 0
        nr, cache.nr_deferred = cache.nr_deferred, 0
        if eligible:
            delta = 4 * scanned // DEFAULT_SEEKS * freeable // (eligible + 1)
        else:
            delta = 4 * freeable // DEFAULT_SEEKS
        total = min(nr + delta, 2 * freeable)
        done = freed = 0
        while total >= SHRINK_BATCH or total >= freeable:
            batch = min(SHRINK_BATCH, total)  # counted as scanned even if the list ran dry
            if not batch:
                break
            freed += self._scan_objects(cache, batch)
            total -= batch
            done += batch
        cache.nr_deferred = min(max(nr + delta - done, 0), 2 * freeable)
        return freed

    def _scan_objects(self, cache: SlabCache, nr: int) -> int:
        """The cache's ``scan_objects``: free its ``nr`` oldest objects."""
        freed = 0
        lru = cache.lru
        for _ in range(min(nr, len(lru))):
            freed += self.free(next(iter(lru)))
            self.shrunk += 1
        return freed

    # --- views --------------------------------------------------------------------
    def is_slab_page(self, pfn: int) -> bool:
        fr = self.mm.frames
        return fr.state[pfn] == FrameState.ALLOC and fr.get_index(pfn) < 0 and fr.owner[pfn] in (
            KERNEL_OWNER[Source.SLAB_RECLAIMABLE], KERNEL_OWNER[Source.SLAB_UNMOVABLE])

    def stats(self) -> dict[str, dict[str, float | int]]:
        """Per cache with slabs: slab pages, objects in use, capacity and
        their ratio (1.0: every slab full)."""
        out = {}
        for c in self.caches:
            if not c.inuse:
                continue
            cap = c.slabs() * c.objects
            out[c.name] = {
                "order": c.order, "slabs": c.slabs(), "pages": c.slabs() << c.order,
                "objects": c.nr_objects, "capacity": cap,
                "utilization": round(c.nr_objects / cap, 4),
            }
        return out
