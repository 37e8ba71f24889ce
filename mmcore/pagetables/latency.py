"""Walk latency: a page walk's memory references resolved through a cache hierarchy.

A walk is recorded as a list of references ``(line, step)``: ``line`` is the
physical address of a 64-byte line (byte address >> 6), ``step`` the
position of the reference in the walk's chain of dependencies (1 = its
address depends on no earlier load of the walk; ``k + 1`` = it depends on
a load of step ``k``).  References of one step are issued together and
overlap (cycles = the slowest of them); steps run in sequence (cycles
add up).  A radix walk is four steps of one reference; an ECPT walk is
one step of ``d`` parallel references.

:class:`CacheHierarchy` resolves a line through L1, L2 and the LLC
(inclusive, fully associative LRU of the stated sizes) and DRAM, and fills
every level on the way back.  The page-table lines share the hierarchy
with the workload's data lines, so data traffic evicts them as it does on
a real core.

Default sizes and load-to-use latencies (core cycles) are those of a
current server core, from Intel's optimization manual and public
measurements of Sapphire Rapids (Golden Cove cores): L1D 48 KiB, 5 cycles;
L2 2 MiB, 14-16 cycles (14 here); LLC slice share taken as 32 MiB at ~50
cycles; DRAM ~250 cycles (about 100 ns at 2.5 GHz).  They are
assumptions, stated in the study configuration and changeable there.

Simplifications: full associativity and true LRU at every level; no
prefetching; no page-walker port limits (parallel references of one step
never queue); writes cost as reads.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

Ref = tuple[int, int]  # (physical line, step)


@dataclass(frozen=True)
class CacheLevel:
    name: str
    size: int  # bytes
    latency: int  # cycles, load to use


@dataclass(frozen=True)
class HierarchyConfig:
    """Cache levels, smallest first, and the memory latency behind them."""

    levels: tuple[CacheLevel, ...] = (
        CacheLevel("L1", 48 << 10, 5),
        CacheLevel("L2", 2 << 20, 14),
        CacheLevel("LLC", 32 << 20, 50),
    )
    dram: int = 250


class CacheHierarchy:
    """Inclusive LRU caches of 64-byte lines; :meth:`access` returns cycles."""

    def __init__(self, cfg: HierarchyConfig | None = None) -> None:
        self.cfg = cfg or HierarchyConfig()
        self.caches: list[OrderedDict[int, None]] = [OrderedDict() for _ in self.cfg.levels]
        self.caps = [lvl.size // 64 for lvl in self.cfg.levels]
        self.hits = [0] * (len(self.cfg.levels) + 1)  # per level, DRAM last

    def access(self, line: int) -> int:
        """Cycles to load ``line``; the line is then in every level."""
        cycles = self.cfg.dram
        found = len(self.caches)
        for i, cache in enumerate(self.caches):
            if line in cache:
                cycles, found = self.cfg.levels[i].latency, i
                break
        self.hits[found] += 1
        for i, cache in enumerate(self.caches):
            if i < found:
                cache[line] = None
                if len(cache) > self.caps[i]:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(line)
        return cycles

    def walk(self, refs: Iterable[Ref]) -> int:
        """Cycles of a walk: per step the slowest reference, steps in sequence."""
        slowest: dict[int, int] = {}
        for line, step in refs:
            c = self.access(line)
            if c > slowest.get(step, 0):
                slowest[step] = c
        return sum(slowest.values())


def dedupe(refs: Iterable[Ref]) -> list[Ref]:
    """One reference per line, at the earliest step it is needed (a line is
    fetched once per walk), in first-use order."""
    first: dict[int, int] = {}
    for line, step in refs:
        if line not in first or step < first[line]:
            first[line] = step
    return list(first.items())


def percentile(values: list[int], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank; 0 when empty."""
    if not values:
        return 0.0
    s = sorted(values)
    return float(s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))])
