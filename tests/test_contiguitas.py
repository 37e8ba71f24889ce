"""Contiguitas: the resize program driving the MM's zone boundary, the
misplaced-unmovable sweep, and the study scenario (reduced) against the
Linux-like baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
from mm_helpers import small_mm

from bpfvm.assembler import assemble_file
from bpfvm.hooks import HOOKS
from bpfvm.loader import load
from mmcore.constants import PAGEBLOCK_PAGES
from mmcore.contiguitas import misplaced_sweep, misplaced_sweep_point, timeline
from mmcore.mm_helpers import MmEnv, policy_helpers
from mmcore.runner import compare_scenario
from mmcore.scenario import load_scenario

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def attach_resize(mm, engine: str) -> None:
    helpers = policy_helpers()
    prog = assemble_file(PROGRAMS / "contiguitas_resize.s", helpers=helpers)
    eng = load(prog, engine=engine, helpers=helpers, hook=HOOKS["zone_resize"],
               env=MmEnv(mm)).engine
    mm.hooks.attach("zone_resize", eng)


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_unmovable_pressure_grows_the_region_movable_pressure_shrinks_it(engine: str) -> None:
    mm = small_mm(64 * PAGEBLOCK_PAGES, 48 * PAGEBLOCK_PAGES)  # 16 pageblocks unmovable
    attach_resize(mm, engine)
    normal = mm.phys.zones[0]
    mm.reclaim.window = [500, 20]  # scanned for unmovable >> movable
    assert mm.after_reclaim(0) == 2  # an eighth of 16
    assert normal.managed == 18 * PAGEBLOCK_PAGES
    mm.reclaim.window = [0, 400]  # movable pressure, the region mostly free
    quarter_free_blocks = normal.free_pages // PAGEBLOCK_PAGES // 4
    assert mm.after_reclaim(0) == -quarter_free_blocks == -4
    assert normal.managed == 14 * PAGEBLOCK_PAGES
    assert mm.hooks.stats()["zone_resize"]["fallbacks"] == 0
    mm.check()


def test_shrinking_stops_at_pageblocks_holding_unmovable_pages() -> None:
    from mmcore.sources import Source

    mm = small_mm(64 * PAGEBLOCK_PAGES, 32 * PAGEBLOCK_PAGES)
    attach_resize(mm, "interp")
    pfns = [mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 10**6) for _ in range(64)]
    top = max(p // PAGEBLOCK_PAGES for p in pfns)
    mm.reclaim.window = [0, 400]
    mm.after_reclaim(0)
    assert mm.phys.zones[0].end // PAGEBLOCK_PAGES > top  # never below a pinned pageblock
    mm.check()


def test_sweep_a_tiny_misplaced_fraction_spoils_most_2m_blocks() -> None:
    points = misplaced_sweep((0.0, 0.001, 0.005, 0.02), memory=128 << 20)
    assert points[0].tainted == 0 and points[0].free_2m == points[0].free_2m_ideal
    shares = [p.obtained_share for p in points]
    assert shares == sorted(shares, reverse=True)
    half = points[2]  # half a percent of the pages misplaced
    assert half.tainted_share > 0.85 and half.obtained_share < 0.2
    assert points[3].free_2m == 0
    for p in points:  # close to the independent-placement expectation
        assert abs((1 - p.tainted_share) - p.expected_clean_share) < 0.15


def test_sweep_point_is_deterministic() -> None:
    a = misplaced_sweep_point(0.002, 64 << 20, seed=3)
    assert a == misplaced_sweep_point(0.002, 64 << 20, seed=3)
    assert a.migrated > 0


def test_study_scenario_gives_1g_pages_only_with_the_region() -> None:
    sc = load_scenario(PROGRAMS / "contiguitas.toml")
    assert sc.baseline is not None and all(n.movable_pages == 0 for n in sc.baseline.machine.nodes)
    assert all(0 < n.pages - n.movable_pages <= n.pages * 0.11 for n in sc.machine.nodes)
    from dataclasses import replace

    phases = (replace(sc.phases[0], end=140, file=replace(sc.phases[0].file, reads_per_tick=512)),
              replace(sc.phases[1], start=40, end=140))
    small = replace(sc, duration=140, sample_every=20, phases=phases,
                    baseline=replace(sc.baseline, duration=140, sample_every=20, phases=phases))
    cmp = compare_scenario(small)
    base, pol = cmp["baseline"]["metrics"], cmp["programs"]["metrics"]
    assert base["huge_1g"]["attempts"] > 0 and pol["huge_1g"]["attempts"] > 0
    assert pol["huge_1g"]["successes"] > base["huge_1g"]["successes"]
    assert pol["gib_ranges_clean"]["clean"] > base["gib_ranges_clean"]["clean"]
    rows = timeline(cmp["programs"])
    assert [r["tick"] for r in rows][:2] == [0, 20] and rows[-1]["tick"] == 139
