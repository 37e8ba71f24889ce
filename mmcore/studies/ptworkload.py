"""A simple workload over a built address space: access streams, TLB, walk latency.

:func:`run_stream` replays ``n`` data accesses over the touched pages of a
process: each access looks its page up in the TLB
(:class:`~mmcore.pagetables.tlb.Tlb`, Skylake-class sizes); a miss makes a
hardware walk of the process's page table (with its walk caches on: the
radix PWC, a program table's metadata cache, ECPT's cuckoo walk caches)
whose recorded references (``last_walk``) are priced by a
:class:`~mmcore.pagetables.latency.CacheHierarchy`; then the data line
itself is loaded through the same hierarchy, so data evicts page-table
lines as on a real core.  The workload is memory-bound and serial: its time
is the sum of walk and data cycles, and the translation share is walk
cycles over that sum (no overlap of walks with other work).

Streams (:data:`STREAMS`), all seeded:

* ``zipf``: pages drawn from a Zipf law (exponent ``zipf_s``) over the
  touched pages in a random rank order, a random line of each;
* ``scan``: every line of every touched page in address order, wrapping;
* ``chase``: pointer chasing, a random cyclic permutation of the touched
  pages, one random line per hop;
* ``uniform``: pages uniformly at random.

:func:`price_lines` prices a rebuild's moved lines the same way.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mmcore.constants import PAGE_SHIFT
from mmcore.pagetables.latency import CacheHierarchy, HierarchyConfig, percentile
from mmcore.pagetables.pte import pte_order, pte_pfn
from mmcore.pagetables.tlb import Tlb, TlbConfig

STREAMS = ("zipf", "scan", "chase", "uniform")
LINES_PER_4K = 64


@dataclass
class StreamResult:
    accesses: int = 0
    walks: int = 0
    refs: int = 0
    walk_cycles: list[int] = field(default_factory=list)
    data_cycles: int = 0

    @property
    def refs_per_walk(self) -> float:
        return self.refs / self.walks if self.walks else 0.0

    @property
    def cycles_mean(self) -> float:
        return sum(self.walk_cycles) / self.walks if self.walks else 0.0

    @property
    def cycles_p99(self) -> float:
        return percentile(self.walk_cycles, 0.99)

    @property
    def translation_share(self) -> float:
        walk = sum(self.walk_cycles)
        total = walk + self.data_cycles
        return walk / total if total else 0.0


def addresses(touched: list[tuple[int, int]], stream: str, n: int, rng: random.Random,
              zipf_s: float = 0.99) -> Iterator[int]:
    """``n`` virtual addresses of ``stream`` over ``touched`` (page va, page bytes)."""
    pages = sorted(touched)
    if stream == "scan":
        def lines() -> Iterator[int]:
            for va, size in itertools.cycle(pages):
                yield from range(va, va + size, 64)
        yield from itertools.islice(lines(), n)
        return
    if stream == "chase":
        order = pages[:]
        rng.shuffle(order)
        for i in range(n):
            va, size = order[i % len(order)]
            yield va + rng.randrange(size // 64) * 64
        return
    if stream == "zipf":
        ranked = pages[:]
        rng.shuffle(ranked)
        cum = list(itertools.accumulate(1.0 / (k + 1) ** zipf_s for k in range(len(ranked))))
        picks = rng.choices(ranked, cum_weights=cum, k=n)
    elif stream == "uniform":
        picks = [pages[rng.randrange(len(pages))] for _ in range(n)]
    else:
        raise ValueError(f"unknown stream {stream!r} (expected one of {', '.join(STREAMS)})")
    for va, size in picks:
        yield va + rng.randrange(size // 64) * 64


def run_stream(pt: Any, mem: Any, vas: Iterable[int], hierarchy: CacheHierarchy,
               tlb_cfg: TlbConfig | None = None) -> StreamResult:
    """Replay ``vas`` through a TLB, ``pt``'s walks and ``hierarchy`` (see module doc)."""
    tlb = Tlb(tlb_cfg or TlbConfig())
    out = StreamResult()
    for va in vas:
        out.accesses += 1
        pfn = tlb.lookup(va)
        if pfn < 0:
            loc = pt.get_pte(va, walk=True)
            if loc is None:
                raise AssertionError(f"{va:#x}: touched but the page table does not find it")
            refs = pt.last_walk
            out.walks += 1
            out.refs += len(refs)
            out.walk_cycles.append(hierarchy.walk(refs))
            pte = mem.read(loc)
            order = pte_order(pte)
            base = pte_pfn(pte)
            tlb.fill(va, order, base)
            pfn = base + ((va >> PAGE_SHIFT) & ((1 << order) - 1))
        out.data_cycles += hierarchy.access((pfn << 6) + ((va >> 6) & (LINES_PER_4K - 1)))
    return out


def price_lines(ranges: Iterable[range], cfg: HierarchyConfig | None = None) -> int:
    """Cycles to touch every line of ``ranges`` once, in order, through a
    cold hierarchy (a rebuild's reads and writes; no overlap between them)."""
    h = CacheHierarchy(cfg)
    return sum(h.access(line) for r in ranges for line in r)
