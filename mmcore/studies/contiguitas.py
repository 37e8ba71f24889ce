"""The Contiguitas study: what scattered unmovable pages cost, and the figures
of a baseline-vs-Contiguitas comparison over time.

:func:`misplaced_sweep_point` crafts a zone in which a fraction of the frames
holds unmovable pages at uniformly random places (misplaced: inside movable
pageblocks, as fallback steals leave them) and another share holds movable
page-cache pages, then compacts the zone as far as it goes and counts the
2 MiB blocks that result.  A pageblock holding one unmovable page can never
become a free 2 MiB block, so a tiny fraction suffices: with ``f`` of the
pages unmovable, a pageblock stays clean with probability ``(1 - f) ** 512``.

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

from mmcore.constants import MAX_ORDER, MT, NR_ORDERS, PAGEBLOCK_ORDER, PAGEBLOCK_PAGES
from mmcore.metrics import unmovable_pageblocks
from mmcore.mm import MM
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.sources import KERNEL_OWNER, Source


@dataclass(frozen=True)
class SweepPoint:
    fraction: float  # of all frames holding a misplaced unmovable page
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
        return (1 - self.fraction) ** PAGEBLOCK_PAGES

    @property
    def obtained_share(self) -> float:
        return self.free_2m / self.free_2m_ideal if self.free_2m_ideal else 0.0


def _free_2m(mm: MM) -> int:
    z = mm.phys.zones[0]
    return sum(z.nr_free[o] << (o - PAGEBLOCK_ORDER) for o in range(PAGEBLOCK_ORDER, NR_ORDERS))


def misplaced_sweep_point(fraction: float, memory: int = 1 << 30, occupancy: float = 0.5,
                          seed: int = 1) -> SweepPoint:
    """One node of ``memory`` bytes: ``fraction`` of its frames unmovable at
    random places, ``occupancy`` of them movable page cache, the rest free;
    then a full compaction of the zone."""
    rng = random.Random(seed)
    mm = MM(MachineSpec((NodeSpec(memory >> 12),)))
    z = mm.phys.zones[0]
    pa = mm.pa
    pa.drain_all()
    pa.take_range(z, z.start, z.end)
    f = mm.new_file(z.managed)
    slab = KERNEL_OWNER[Source.SLAB_UNMOVABLE]
    cached = 0
    for pfn in range(z.start, z.end):
        r = rng.random()
        if r < fraction:
            pa.prep(pfn, 0, MT.UNMOVABLE, slab, pfn)
        elif r < fraction + occupancy:
            pa.prep(pfn, 0, MT.MOVABLE, f.fid, cached)
            f.pages[cached] = pfn
            cached += 1
        else:
            pa.free_one(z, pfn, 0, MT.MOVABLE)
    f.cached = cached
    unmov = unmovable_pageblocks(mm)
    ideal = z.free_pages >> PAGEBLOCK_ORDER
    mm.compaction.compact_zone(z, MAX_ORDER)  # a goal never reached: the scanners meet
    return SweepPoint(fraction, len(unmov), int(unmov.sum()), ideal, _free_2m(mm),
                      mm.compaction.migrated)


SWEEP_FRACTIONS = (0.0, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


def misplaced_sweep(fractions: tuple[float, ...] = SWEEP_FRACTIONS, memory: int = 1 << 30,
                    occupancy: float = 0.5, seed: int = 1) -> list[SweepPoint]:
    return [misplaced_sweep_point(f, memory, occupancy, seed) for f in fractions]


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
