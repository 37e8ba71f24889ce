"""Cuckoo walk tables and caches: which ways of which page-size table may hold a va.

ECPT (Skarlatos et al., ASPLOS'20) keeps Cuckoo Walk Tables in memory --
per 1 GiB region (PUD-CWT) and per 2 MiB region (PMD-CWT) the page sizes
present and the ways holding them -- and caches their entries in small
Cuckoo Walk Caches next to the MMU, so that a walk probes only the ways
that can hold the translation instead of all ``d`` ways of all sizes.

This model keeps the walk tables exact (the host updates them on every
map, unmap, displacement and migration, as ECPT's OS does) and caches
them in two LRU caches:

* PMD-CWC, keyed by ``va >> 21``: the (size, way) pairs of every page
  covering some byte of that 2 MiB region (its 4 KiB pages, the 2 MiB page
  at it, the 1 GiB page around it);
* PUD-CWC, keyed by ``va >> 30``: the page sizes present in that 1 GiB
  region; with it, a walk probes every way of those sizes only.

A walk that misses both probes every way of every size with pages (the
table's own header).  Either way the entry is then filled, as if the CWT
entry had been fetched alongside the probes: its fetch is not counted.
Entry counts default to those of the radix page-walk cache this replaces
(8 PDPTE-like, 32 PDE-like entries); ECPT's own CWC sizes differ (see the
study's notes).  When a walk table entry changes, its cached copies are
dropped (ECPT keeps the CWCs coherent the same way, by invalidation).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

from mmcore.constants import PAGE_SHIFT

SHIFT_2M, SHIFT_1G = 21, 30
Pair = tuple[int, int]  # (size code, way)


@dataclass(frozen=True)
class CwcConfig:
    pud_entries: int = 8
    pmd_entries: int = 32


class CuckooWalkCache:
    """Exact walk tables plus their two LRU caches (see the module doc)."""

    def __init__(self, cfg: CwcConfig | None = None) -> None:
        self.cfg = cfg or CwcConfig()
        self.pmd_cwt: dict[int, Counter[Pair]] = {}
        self.pud_cwt: dict[int, Counter[int]] = {}
        self.pmd: OrderedDict[int, frozenset[Pair]] = OrderedDict()
        self.pud: OrderedDict[int, frozenset[int]] = OrderedDict()
        self.hits = [0, 0, 0]  # PMD-CWC, PUD-CWC, neither

    # -- the walk tables (updated by the host) --------------------------------
    def note(self, va: int, code: int, way: int, delta: int) -> None:
        """A page of size ``code`` at ``va`` entered (+1) or left (-1) ``way``."""
        shift = PAGE_SHIFT + 9 * code
        first = va >> shift << shift
        pmd_keys = ([first >> SHIFT_2M] if code < 2 else
                    range(first >> SHIFT_2M, (first >> SHIFT_2M) + 512))
        for key in pmd_keys:
            self._bump(self.pmd_cwt, key, (code, way), delta)
            self.pmd.pop(key, None)
        self._bump(self.pud_cwt, first >> SHIFT_1G, code, delta)
        self.pud.pop(first >> SHIFT_1G, None)

    @staticmethod
    def _bump(table: dict, key: int, item: object, delta: int) -> None:
        c = table.setdefault(key, Counter())
        c[item] += delta
        if c[item] <= 0:
            del c[item]
            if not c:
                del table[key]

    # -- walks -------------------------------------------------------------------
    def probes(self, va: int) -> tuple[frozenset[Pair] | None, frozenset[int] | None]:
        """What a walk of ``va`` may probe: (the (size, way) pairs, from a
        PMD-CWC hit; else None) and (the sizes, from a PUD-CWC hit; else
        None).  Both None: every way of every size.  Fills the caches."""
        k2, k1 = va >> SHIFT_2M, va >> SHIFT_1G
        pairs = self.pmd.get(k2)
        if pairs is not None:
            self.pmd.move_to_end(k2)
            self.hits[0] += 1
            return pairs, None
        sizes = self.pud.get(k1)
        if sizes is not None:
            self.pud.move_to_end(k1)
            self.hits[1] += 1
        else:
            self.hits[2] += 1
        self._fill(self.pmd, k2, frozenset(self.pmd_cwt.get(k2, ())), self.cfg.pmd_entries)
        self._fill(self.pud, k1, frozenset(self.pud_cwt.get(k1, ())), self.cfg.pud_entries)
        return None, sizes

    @staticmethod
    def _fill(cache: OrderedDict, key: int, value: frozenset, cap: int) -> None:
        cache[key] = value
        cache.move_to_end(key)
        if len(cache) > cap:
            cache.popitem(last=False)

    def flush(self) -> None:
        self.pmd.clear()
        self.pud.clear()
