"""The translation model: a per-process TLB and a page-walk cache.

The TLB has separate LRU arrays for 4 KiB, 2 MiB and 1 GiB translations
(default capacities follow a Skylake-class STLB: 1536 / 1536 / 16).  On a
miss the translator asks the page table for a hardware walk
(``get_pte(va, walk=True)``) and counts the memory references the table
reports through its ``walk_refs`` counter, whatever its kind: one per radix
level not found in the PWC, or, for a program-based table, the loads the
program made from its region.  The PWC models Intel's paging-structure
caches: PML4E, PDPTE and PDE entries keyed by the virtual-address prefix.

Differences from hardware: one TLB level; no ASIDs (every process has its
own TLB object); invalidation is exact (per page) instead of a full flush.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from mmcore.constants import ORDER_1G, ORDER_2M, ORDER_4K, PAGE_SHIFT

PWC_SHIFTS = (39, 30, 21)


@dataclass(frozen=True)
class TlbConfig:
    entries_4k: int = 1536
    entries_2m: int = 1536
    entries_1g: int = 16
    pwc_pml4: int = 4
    pwc_pdpt: int = 8
    pwc_pd: int = 32


class PageWalkCache:
    """Caches of upper-level entries: level -> OrderedDict(prefix -> table pfn)."""

    def __init__(self, cfg: TlbConfig) -> None:
        self.caps = (cfg.pwc_pml4, cfg.pwc_pdpt, cfg.pwc_pd)
        self.caches: tuple[OrderedDict[int, int], ...] = tuple(OrderedDict() for _ in PWC_SHIFTS)
        self.hits = 0

    def lookup(self, va: int, root: int) -> tuple[int, int]:
        """(level to start the walk at, table pfn at that level)."""
        pd, pdpt, pml4 = self.caches[2], self.caches[1], self.caches[0]
        key = va >> 21
        t = pd.get(key)
        if t is None:
            key = va >> 30
            t = pdpt.get(key)
            if t is None:
                key = va >> 39
                t = pml4.get(key)
                if t is None:
                    return 0, root
                pml4.move_to_end(key)
                self.hits += 1
                return 1, t
            pdpt.move_to_end(key)
            self.hits += 1
            return 2, t
        pd.move_to_end(key)
        self.hits += 1
        return 3, t

    def fill(self, lvl: int, va: int, table: int) -> None:
        cache = self.caches[lvl]
        cache[va >> PWC_SHIFTS[lvl]] = table
        if len(cache) > self.caps[lvl]:
            cache.popitem(last=False)

    def flush(self) -> None:
        for cache in self.caches:
            cache.clear()


class Tlb:
    """Per-process TLB: one LRU dict per page size, key = va >> page shift."""

    def __init__(self, cfg: TlbConfig) -> None:
        self.c4k: OrderedDict[int, int] = OrderedDict()
        self.c2m: OrderedDict[int, int] = OrderedDict()
        self.c1g: OrderedDict[int, int] = OrderedDict()
        self.sizes = (
            (ORDER_4K, self.c4k, cfg.entries_4k),
            (ORDER_2M, self.c2m, cfg.entries_2m),
            (ORDER_1G, self.c1g, cfg.entries_1g),
        )
        self.cap4k = cfg.entries_4k
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    def lookup(self, va: int) -> int:
        """The pfn ``va`` translates to, or -1 on a miss."""
        key = va >> PAGE_SHIFT
        pfn = self.c4k.get(key)
        if pfn is not None:
            self.c4k.move_to_end(key)
            self.hits += 1
            return pfn
        key = va >> (PAGE_SHIFT + ORDER_2M)
        pfn = self.c2m.get(key)
        if pfn is not None:
            self.c2m.move_to_end(key)
            self.hits += 1
            return pfn + ((va >> PAGE_SHIFT) & ((1 << ORDER_2M) - 1))
        key = va >> (PAGE_SHIFT + ORDER_1G)
        pfn = self.c1g.get(key)
        if pfn is not None:
            self.c1g.move_to_end(key)
            self.hits += 1
            return pfn + ((va >> PAGE_SHIFT) & ((1 << ORDER_1G) - 1))
        self.misses += 1
        return -1

    def fill(self, va: int, order: int, pfn: int) -> None:
        if order == ORDER_4K:
            cache = self.c4k
            cache[va >> PAGE_SHIFT] = pfn
            if len(cache) > self.cap4k:
                cache.popitem(last=False)
            return
        for o, cache, cap in self.sizes:
            if o == order:
                cache[va >> (PAGE_SHIFT + order)] = pfn
                if len(cache) > cap:
                    cache.popitem(last=False)
                return

    def invalidate(self, va: int, order: int) -> None:
        cache = self.c4k if order == ORDER_4K else self.c2m if order == ORDER_2M else (
            self.c1g if order == ORDER_1G else None)
        if cache is not None and cache.pop(va >> (PAGE_SHIFT + order), None) is not None:
            self.invalidations += 1

    def flush(self) -> None:
        for _, cache, _ in self.sizes:
            cache.clear()
