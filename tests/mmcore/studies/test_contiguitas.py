"""Contiguitas: the resize program driving the MM's zone boundary, the
misplaced-unmovable sweep, and the study scenario (reduced) against the
Linux-like baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfvm.asm.assembler import assemble_file
from bpfvm.load import load
from mmcore.constants import PAGEBLOCK_PAGES
from mmcore.hooks.host import MmEnv, policy_helpers
from mmcore.hooks.specs import HOOKS
from mmcore.scenario.runner import compare_scenario
from mmcore.scenario.schema import load_scenario
from mmcore.studies.contiguitas import misplaced_sweep, misplaced_sweep_point, timeline
from tests.conftest import PROGRAMS
from tests.mmcore.machines import small_mm

PROGRAMS = PROGRAMS


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
    mm.reclaim.window = [1000, 20]  # scanned for unmovable >> movable
    assert mm.after_reclaim(0) == 2  # 1000 pages scanned: two pageblocks
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


def test_a_resizable_region_keeps_unmovable_pages_at_its_far_end() -> None:
    from mmcore.sources import Source

    mm = small_mm(64 * PAGEBLOCK_PAGES, 32 * PAGEBLOCK_PAGES)
    normal, movable = mm.phys.zones
    assert not mm.pa.confine(normal)  # a fixed region: Linux's fallback
    attach_resize(mm, "interp")
    assert mm.pa.confine(normal) and not mm.pa.confine(movable)
    pfns = [mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 10**6) for _ in range(600)]
    # two pageblocks' worth, in the lowest pageblocks the fallback could claim
    assert max(pfns) < normal.start + 4 * PAGEBLOCK_PAGES and mm.pa.confined > 0
    mm.check()


def test_sweep_unmovable_pages_come_from_the_kernels_activity() -> None:
    points = misplaced_sweep((0.0, 2.0, 8.0), memory=64 << 20, ticks=80)
    quiet, busy, busiest = points
    assert quiet.unmovable == quiet.fraction == 0 and quiet.tainted == 0
    # nothing pins: compaction recovers all but at most the block where its scanners met
    assert quiet.free_2m_ideal - 1 <= quiet.free_2m <= quiet.free_2m_ideal
    assert 0 < busy.unmovable < busiest.unmovable
    assert 0 < busy.tainted <= busiest.tainted <= busiest.pageblocks
    for p in points:
        assert p.fraction <= p.unmovable  # the misplaced are some of the unmovable
        assert p.free_2m <= p.free_2m_ideal
        assert p.free_2m + p.tainted <= p.pageblocks  # a tainted block never comes free


def test_misplaced_counts_unmovable_pages_in_movable_pageblocks() -> None:
    from mmcore.constants import MT
    from mmcore.studies.contiguitas import _misplaced
    from tests.mmcore.machines import fragment

    mm = small_mm(4096)
    fragment(mm)  # 2048 unmovable pages, all in (MOVABLE) pageblocks
    assert _misplaced(mm) == (2048, 2048)
    mm.frames.pb_mt[0] = MT.UNMOVABLE  # the first pageblock's 256 are in place
    assert _misplaced(mm) == (2048 - 256, 2048)


def test_sweep_point_is_deterministic() -> None:
    a = misplaced_sweep_point(4.0, 32 << 20, seed=3, ticks=40)
    assert a == misplaced_sweep_point(4.0, 32 << 20, seed=3, ticks=40)
    assert a.migrated > 0 and a.unmovable > 0


def test_movable_pressure_blocks_growth_for_a_while() -> None:
    mm = small_mm(64 * PAGEBLOCK_PAGES, 48 * PAGEBLOCK_PAGES)
    attach_resize(mm, "interp")
    mm.tick = 10
    mm.reclaim.window = [0, 4000]  # movable allocations reclaim (region mostly free: shrink)
    mm.after_reclaim(0)
    blocks = mm.phys.zones[0].managed // PAGEBLOCK_PAGES
    mm.reclaim.window = [500, 0]  # the same tick: unmovable pressure, but less than recent
    assert mm.after_reclaim(0) == 0
    mm.tick = 20  # 4000 halved ten times: now below 500
    mm.reclaim.window = [500, 0]
    assert mm.after_reclaim(0) == 1  # 500 pages: one pageblock
    assert blocks < 16


def test_quiet_region_gives_its_growth_back_down_to_a_tenth() -> None:
    from mmcore.sources import Source

    mm = small_mm(160 * PAGEBLOCK_PAGES, 144 * PAGEBLOCK_PAGES)  # 16 pageblocks: the floor
    attach_resize(mm, "interp")
    normal = mm.phys.zones[0]
    for _ in range(4):  # tick 0: unmovable pressure
        mm.reclaim.window = [1000, 0]
        mm.after_reclaim(0)
    grown = normal.managed // PAGEBLOCK_PAGES
    assert grown == 24  # 16 + 4 * 2: 1000 pages scanned each time, two pageblocks
    while normal.free_pages > normal.managed // 4:  # no longer "over half free"
        mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 10**6)
    mm.tick = 19
    mm.reclaim.window = [0, 400]
    assert mm.hooks.call("zone_resize", _ctx(mm)) == 0  # too soon after the burst
    mm.tick = 20
    assert mm.hooks.call("zone_resize", _ctx(mm)) == -((grown - 16) // 4)
    mm.check()


def _ctx(mm) -> tuple:
    node = mm.phys.nodes[0]
    w = mm.reclaim.window
    return (w[0], w[1], node.normal.managed // PAGEBLOCK_PAGES,
            node.movable.managed // PAGEBLOCK_PAGES, node.normal.free_pages,
            node.movable.free_pages, 1, (node.end - node.start) // PAGEBLOCK_PAGES - 1)


def test_kept_pageblocks_drain_and_a_later_shrink_takes_them() -> None:
    from mmcore.constants import MT
    from mmcore.sources import Source
    from tests.mmcore.machines import SLAB

    mm = small_mm(64 * PAGEBLOCK_PAGES, 32 * PAGEBLOCK_PAGES)
    normal = mm.phys.zones[0]
    mm.pa.drain_all()
    mm.pa.take_range(normal, normal.start, normal.end)
    pinned = normal.end - 7  # an unmovable page in the top pageblock
    mm.pa.prep(pinned, 0, MT.UNMOVABLE, SLAB, 0)
    mm.kernel.pages[Source.SLAB_UNMOVABLE] += 1
    mm.pa.free_range(normal.start, pinned)
    mm.pa.free_range(pinned + 1, normal.end)
    assert mm.resize_zone(0, -4) == 0
    kept = range((normal.end >> 9) - 4, normal.end >> 9)
    assert all(mm.frames.pb_mt[pb] == MT.MOVABLE for pb in kept)
    pfns = [mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 10) for _ in range(600)]
    assert max(pfns) < normal.end - 4 * PAGEBLOCK_PAGES  # new unmovable pages avoid them
    mm.pa.free(pinned)
    mm.kernel.pages[Source.SLAB_UNMOVABLE] -= 1
    mm.check()
    assert mm.resize_zone(0, -4) == -4
    mm.check()


def reduced(path: Path, ticks: int):
    """A scenario cut at ``ticks`` (both sides), for a fast test."""
    from dataclasses import replace

    sc = load_scenario(path)
    phases = tuple(replace(ph, end=min(ph.end, ticks)) for ph in sc.phases if ph.start < ticks)
    cut = {"duration": ticks, "sample_every": 10, "phases": phases}
    return replace(sc, **cut, baseline=replace(sc.baseline, **cut))


@pytest.fixture(scope="module")
def demo_cmp() -> dict:
    return compare_scenario(reduced(PROGRAMS / "default.toml", 130))


def test_demo_scenario_region_grows_in_the_burst_and_shrinks_after(demo_cmp) -> None:
    sc = load_scenario(PROGRAMS / "default.toml")
    burst = next(ph for ph in sc.phases if "burst" in ph.name)
    pol = demo_cmp["programs"]
    assert pol["metrics"]["zone_resizes"] > 0 and pol["metrics"]["pageblocks_moved"] > 0
    region = {s["tick"]: sum(s["normal_pages"].values()) for s in pol["series"]}
    boot = region[0]
    peak = max(v for t, v in region.items() if t <= burst.end + 10)
    assert peak > boot * 1.3  # grown for the burst
    # growth is given back after the burst, as far as the pageblocks at the
    # boundary are free (unmovable pages are not migrated)
    assert region[max(region)] < peak
    resizes = [s["zone_resizes"] for s in pol["series"]]
    assert resizes == sorted(resizes) and resizes[-1] == pol["metrics"]["zone_resizes"]
    assert demo_cmp["baseline"]["metrics"]["zone_resizes"] == 0


def test_demo_scenario_gives_1g_pages_only_with_the_region(demo_cmp) -> None:
    base, pol = demo_cmp["baseline"]["metrics"], demo_cmp["programs"]["metrics"]
    assert base["huge_1g"]["attempts"] > 0 and pol["huge_1g"]["attempts"] > 0
    assert pol["huge_1g"]["successes"] > base["huge_1g"]["successes"]
    assert pol["gib_ranges_clean"]["clean"] > base["gib_ranges_clean"]["clean"]
    rows = timeline(demo_cmp["programs"])
    assert [r["tick"] for r in rows][:2] == [0, 10] and rows[-1]["tick"] == 129


def test_study_scenario_has_the_same_shape() -> None:
    sc = load_scenario(PROGRAMS / "contiguitas.toml")
    assert sc.baseline is not None and all(n.movable_pages == 0 for n in sc.baseline.machine.nodes)
    assert all(0 < n.pages - n.movable_pages <= n.pages * 0.11 for n in sc.machine.nodes)
    names = [ph.name for ph in sc.phases]
    assert any("burst" in n for n in names) and any("batch" in n for n in names)
    assert "contiguitas_resize.s" in [a.program for a in sc.attach]
