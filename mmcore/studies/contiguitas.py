"""The Contiguitas study: what scattered unmovable pages cost, and the figures
of a baseline-vs-Contiguitas comparison over time.

:func:`misplaced_sweep_point` runs the simulated kernel on a Linux-like
node kept full by page cache, at a level of kernel activity (slab objects
with long-tailed lifetimes, network buffers of which a few are held long,
processes whose page tables grow under pressure and go at exit), then
measures where the unmovable pages landed: the fraction of frames holding
an unmovable page inside a movable pageblock (misplaced, as fallback steals
leave them), the pageblocks tainted, and the 2 MiB blocks a full compaction
recovers.  A pageblock holding one unmovable page can never become a free
2 MiB block; were the misplaced pages scattered uniformly, a pageblock
would stay clean with probability ``(1 - f) ** 512``.  The kernel's
scatter is not uniform (slab pages and page tables cluster in the
pageblocks their fallbacks claimed), and the sweep shows by how much.

:func:`timeline` extracts, per sample of a run, the share of pageblocks
holding unmovable pages, the 2 MiB and 1 GiB success rates of the window,
pages migrated by compaction and the unmovable (normal) zone size.  The
scenario itself is ``programs/contiguitas.toml``; the runner and the
comparison are :mod:`mmcore.scenario.runner`'s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmcore.constants import MAX_ORDER, MT, NR_ORDERS, PAGEBLOCK_ORDER, PAGEBLOCK_PAGES, FrameState
from mmcore.errors import OutOfMemoryError
from mmcore.metrics import unmovable_pageblocks
from mmcore.mm import MM
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.scenario.schema import DEFAULT_CACHE_MIX
from mmcore.sources import Source
from mmcore.virt.pagecache import File
from mmcore.virt.process import Process


@dataclass(frozen=True)
class SweepPoint:
    activity: float  # the kernel activity knob (multiple of BASE_ACTIVITY)
    fraction: float  # of all frames: unmovable pages inside movable pageblocks (measured)
    unmovable: float  # of all frames: unmovable pages anywhere (measured)
    pageblocks: int
    tainted: int  # pageblocks holding at least one unmovable page
    free_2m_ideal: int  # 2 MiB blocks the free memory would make if nothing were pinned
    free_2m: int  # 2 MiB blocks free after compacting as far as it goes
    migrated: int

    @property
    def tainted_share(self) -> float:
        return self.tainted / self.pageblocks

    @property
    def expected_clean_share(self) -> float:
        """Pageblocks clean if the misplaced pages were scattered uniformly."""
        return (1 - self.fraction) ** PAGEBLOCK_PAGES

    @property
    def obtained_share(self) -> float:
        return self.free_2m / self.free_2m_ideal if self.free_2m_ideal else 0.0


# What the kernel does per tick and GiB of memory at activity 1 (the knob
# multiplies every rate): slab objects with Pareto lifetimes through the default cache mix,
# network buffers (mostly short-lived, a few held long: sockets that keep
# their receive queues), and processes whose sparse touches need page-table
# pages, exiting after a while.
BASE_ACTIVITY = {"objects": 400, "netbufs": 16, "pt_touches": 16}
OBJECT_LIFETIME, OBJECT_ALPHA = (5, 5000), 1.2
NETBUF_ORDERS, NETBUF_LIFETIME = (0, 2), (1, 10)
NETBUF_LONG_SHARE, NETBUF_LONG_LIFETIME = 0.01, (1000, 10000)
PT_PROCESSES, PT_LIFETIME, PT_SPAN = 4, (50, 400), 64 << 30
SWEEP_TICKS = 200


def _free_2m(mm: MM) -> int:
    z = mm.phys.zones[0]
    return sum(z.nr_free[o] << (o - PAGEBLOCK_ORDER) for o in range(PAGEBLOCK_ORDER, NR_ORDERS))


def _misplaced(mm: MM) -> tuple[int, int]:
    """(pages of non-movable allocations in MOVABLE pageblocks, all of them)."""
    fr = mm.frames
    st, mt, order = fr.view("state"), fr.view("mt"), fr.view("order")
    heads = np.nonzero((st == FrameState.ALLOC) & (mt != MT.MOVABLE))[0]
    pages = np.left_shift(1, order[heads].astype(np.int64))
    pb = np.frombuffer(fr.pb_mt, dtype=np.uint8)[heads >> PAGEBLOCK_ORDER]
    return int(pages[pb == MT.MOVABLE].sum()), int(pages.sum())


class _KernelLoad:
    """The sweep's kernel activity on one machine, from one seeded stream."""

    def __init__(self, mm: MM, activity: float, rng: random.Random) -> None:
        self.mm, self.rng = mm, rng
        self.a = activity * (mm.phys.zones[0].managed << 12) / (1 << 30)  # per GiB
        names, weights = zip(*DEFAULT_CACHE_MIX, strict=True)
        self.caches, self.weights = [mm.slab.by_name[n] for n in names], weights
        self.procs: list[tuple[Process, int, int]] = []  # (process, mapping, exit tick)

    def _count(self, rate: float) -> int:
        n = int(rate)
        return n + (self.rng.random() < rate - n)

    def tick(self, t: int) -> None:
        mm, rng, a = self.mm, self.rng, self.a
        for cache in rng.choices(self.caches, self.weights,
                                 k=self._count(a * BASE_ACTIVITY["objects"])):
            scale, cap = OBJECT_LIFETIME
            mm.slab.alloc(cache, min(cap, int(scale * rng.paretovariate(OBJECT_ALPHA))))
        for _ in range(self._count(a * BASE_ACTIVITY["netbufs"])):
            long = rng.random() < NETBUF_LONG_SHARE
            life = rng.randint(*(NETBUF_LONG_LIFETIME if long else NETBUF_LIFETIME))
            mm.kernel.alloc(Source.NETBUF, rng.randint(*NETBUF_ORDERS), life)
        self._page_tables(t)

    def _page_tables(self, t: int) -> None:
        """Processes touching pages spread over a wide mapping: each touch in
        a new 2 MiB range needs a page-table page, allocated under whatever
        pressure memory is in; an exit frees them."""
        mm, rng = self.mm, self.rng
        kept = []
        for proc, va, end in self.procs:
            if t >= end and proc.alive:
                mm.exit(proc)
            elif proc.alive:
                kept.append((proc, va, end))
        self.procs = kept
        touches = self._count(self.a * BASE_ACTIVITY["pt_touches"])
        if not touches:
            return
        while len(self.procs) < PT_PROCESSES:
            try:
                proc = mm.spawn()
            except OutOfMemoryError:
                break
            va = proc.mmap(PT_SPAN, "none")
            self.procs.append((proc, va, t + rng.randint(*PT_LIFETIME)))
        for _ in range(touches):
            if not self.procs:
                break
            proc, va, _ = rng.choice(self.procs)
            if proc.alive:
                proc.fault(va + (rng.randrange(PT_SPAN >> 12) << 12))


SWEEP_MEMORY = 256 << 20


def misplaced_sweep_point(activity: float, memory: int = SWEEP_MEMORY, occupancy: float = 0.5,
                          seed: int = 1, ticks: int = SWEEP_TICKS) -> SweepPoint:
    """One Linux-like node of ``memory`` bytes (no movable zone) runs
    ``ticks`` ticks of kernel ``activity`` (:data:`BASE_ACTIVITY` per GiB
    times the knob) under a page cache that keeps memory full (a file of
    1.5 times the node's size read through once), with kswapd, kcompactd and slab expiry between
    ticks; the unmovable pages land where the allocator puts them.  Then the
    page cache is cut to ``occupancy`` of the frames (pages dropped at
    random, as reclaim would leave it) and the zone compacted as far as it
    goes.  The misplaced fraction is measured, not set."""
    rng = random.Random(f"{seed}/misplaced")
    mm = MM(MachineSpec((NodeSpec(memory >> 12),)))
    z = mm.phys.zones[0]
    f = mm.new_file(3 * (memory >> 12) // 2)
    load = _KernelLoad(mm, activity, rng)
    reads = f.npages // ticks
    cursor = 0
    for t in range(ticks):
        mm.tick = t
        load.tick(t)
        for _ in range(reads):
            f.read(cursor % f.npages)
            cursor += 1
        mm.background()
    _trim_cache(mm, f, int(occupancy * z.managed), rng)
    misplaced, unmovable = _misplaced(mm)
    unmov = unmovable_pageblocks(mm)
    mm.pa.drain_all()
    ideal = z.free_pages >> PAGEBLOCK_ORDER
    before = mm.compaction.migrated
    mm.compaction.compact_zone(z, MAX_ORDER)  # a goal never reached: the scanners meet
    return SweepPoint(activity, misplaced / z.managed, unmovable / z.managed, len(unmov),
                      int(unmov.sum()), ideal, _free_2m(mm), mm.compaction.migrated - before)


def _trim_cache(mm: MM, f: File, keep: int, rng: random.Random) -> None:
    """Drop random page-cache pages of ``f`` until at most ``keep`` remain."""
    cached = [i for i, pfn in enumerate(f.pages) if pfn >= 0]
    rng.shuffle(cached)
    for i in cached[: max(0, len(cached) - keep)]:
        pfn = f.pages[i]
        mm.lru.remove(pfn)
        f.evict(pfn, i, 0)
        mm.pa.free(pfn)


SWEEP_ACTIVITY = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def misplaced_sweep(activities: tuple[float, ...] = SWEEP_ACTIVITY, memory: int = SWEEP_MEMORY,
                    occupancy: float = 0.5, seed: int = 1,
                    ticks: int = SWEEP_TICKS) -> list[SweepPoint]:
    return [misplaced_sweep_point(a, memory, occupancy, seed, ticks) for a in activities]


def timeline(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per sample: tick, unmovable-tainted pageblock share, 2 MiB / 1 GiB
    success in the window (None without attempts), pages migrated so far,
    pages of the normal (unmovable-capable) zones."""
    return [
        {
            "tick": s["tick"],
            "unmovable_share": s["pageblocks_unmovable_share"],
            "success_2m": s["huge_2m_window_rate"],
            "attempts_2m": s["huge_2m_window_attempts"],
            "success_1g": s["huge_1g_window_rate"],
            "attempts_1g": s["huge_1g_window_attempts"],
            "migrated": s["compaction_pages_migrated"],
            "normal_pages": sum(s["normal_pages"].values()),
        }
        for s in results["series"]
    ]
