"""A steady-state reference stream over the memory a machine's processes
have populated, to measure address translation without first touches.

A run's own references are dominated by faults while processes populate
their memory, so TLB misses per access measure population, not a running
workload.  :func:`steady_window` issues references after the run instead:
each picks a process (weighted by its resident memory), one of its
populated regions (a 1 GiB or 2 MiB huge page, or a 2 MiB range of 4 KiB
pages) with a power-law skew towards its first-mapped regions (region
``int(n * u ** REGION_SKEW)`` for uniform ``u``: a hot set, as a server's
heap has), and a uniformly random 4 KiB page within it.  Only present pages
are referenced (a page swapped out or never touched is drawn again), so the
window neither faults nor allocates: it reads translations as they are.  A
warm-up of ``WARMUP_SHARE`` of the window fills the TLB and page-walk
caches first; TLB misses and page-walk references are counted over the
rest.
"""

from __future__ import annotations

import random
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from mmcore.pagetables.pte import PTE_PRESENT

if TYPE_CHECKING:
    from mmcore.mm import MM
    from mmcore.virt.process import Process

WINDOW_ACCESSES = 40_000
WARMUP_SHARE = 0.25
REGION_SKEW = 3
MAX_DRAWS = 4  # draws per reference made, at most, before the window gives up


def populated_regions(p: Process) -> list[tuple[int, int]]:
    """(base address, size) of each region of ``p`` holding mapped memory,
    in address order: its 1 GiB and 2 MiB pages and the 2 MiB ranges of
    its 4 KiB pages."""
    regions = [(g << 30, 1 << 30) for g in p.huge1g]
    regions += [(h << 21, 1 << 21) for h in p.huge2m]
    regions += [(k << 21, 1 << 21) for k in p.pmd_count]
    return sorted(regions)


def steady_window(mm: MM, accesses: int = WINDOW_ACCESSES, seed: int = 1) -> dict[str, Any]:
    """Issue ``accesses`` references (after a warm-up) over the populated
    memory of ``mm``'s live processes; TLB misses and walk references per
    1,000 of them (None without populated memory)."""
    procs = [p for p in mm.procs.values() if p.alive and p.rss_pages]
    regions = [populated_regions(p) for p in procs]
    none = {"accesses": 0, "tlb_misses_per_1k": None, "walk_refs_per_1k": None}
    if not procs:
        return none
    rng = random.Random(f"{seed}/steady")
    cum = list(accumulate(p.rss_pages for p in procs))
    read = mm.mem.read
    warm = int(accesses * WARMUP_SHARE)
    made = draws = 0
    misses0 = refs0 = 0
    while made < warm + accesses and draws < MAX_DRAWS * (warm + accesses):
        draws += 1
        i = rng.choices(range(len(procs)), cum_weights=cum)[0]
        p, regs = procs[i], regions[i]
        base, size = regs[int(len(regs) * rng.random() ** REGION_SKEW)]
        va = base + (rng.randrange(size >> 12) << 12)
        loc = p.pt.get_pte(va)
        if loc is None or not read(loc) & PTE_PRESENT:
            continue
        if made == warm:
            misses0 = sum(q.tlb.misses for q in procs)
            refs0 = mm.stats.walk_refs
        p.access(va)
        made += 1
    n = made - warm
    if n <= 0:
        return none
    misses = sum(q.tlb.misses for q in procs) - misses0
    refs = mm.stats.walk_refs - refs0
    return {"accesses": n, "tlb_misses_per_1k": round(1000 * misses / n, 3),
            "walk_refs_per_1k": round(1000 * refs / n, 3)}
