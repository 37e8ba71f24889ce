"""Stress scenarios (``tests/data/mm_stress``) run to their end with every
invariant checked after every tick, on both engines.

``pagecache_resize`` and ``pagecache_fixed`` are the machines that used to
die with an uncaught PageTableError (a new process's first page-table page
could not be allocated once the small normal zone filled up);
``unmovable_churn`` drives unmovable allocations into zone-aware reclaim and
the OOM killer; ``hugetlb_growth`` grows the 1 GiB hugetlb pool at run time
under fragmentation (alloc_contig_range migrating page cache and anonymous
memory out of 1 GiB ranges, failing on pinned and unmovable pages);
``slab_churn`` does it with slab objects of long-tailed lifetimes, shrinkers
and the cost scan balance.  ``two_nodes_resize`` runs two region-managed
nodes of different sizes, both resized by contiguitas_resize.s;
``thp_khugepaged`` THP enabled = always with direct compaction and an eager
khugepaged under page-cache pressure, with pinned pages; ``hugetlb_pagecache``
grows and shrinks the 1 GiB pool while files larger than memory are read,
deleted and replaced; ``tiny_machine`` is a 32 MiB machine where processes
are larger than memory.  Random small scenarios
(:mod:`tests.mmcore.scenario.random_scenarios`) must run to their end too.
"""

from __future__ import annotations

import json

import pytest

from bpfvm.cli import main
from mmcore.scenario.runner import run_scenario
from tests.conftest import DATA
from tests.mmcore.scenario.random_scenarios import random_scenario, run

STRESS = DATA / "mm_stress"
SCENARIOS = sorted(p.stem for p in STRESS.glob("*.toml"))


def test_the_stress_corpus_is_there():
    assert {"pagecache_resize", "pagecache_fixed", "unmovable_churn", "hugetlb_growth",
            "slab_churn", "two_nodes_resize", "thp_khugepaged", "hugetlb_pagecache",
            "tiny_machine"} <= set(SCENARIOS)


@pytest.mark.parametrize("engine", ["interp", "jit"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_runs_to_completion_with_check(name: str, engine: str) -> None:
    res = run_scenario(STRESS / f"{name}.toml", check=True, engine=engine)
    assert res["series"][-1]["tick"] == res["duration"] - 1
    assert set(res["engines"].values()) == {engine}
    m = res["metrics"]
    assert m["tick"] == res["duration"] - 1
    # the machine really was short of memory: allocations took the slow path
    assert m["alloc"]["slowpath"] > 0 and m["reclaim"]["reclaimed"] > 0
    if name == "unmovable_churn":
        assert m["reclaim"]["scanned_for_unmovable"] > 0
        assert m["reclaim"]["skipped_ineligible_zone"] > 0
        assert m["oom_kills"] > 0 and m["oom_killed_pages"] > 0
    if name == "hugetlb_growth":
        h = m["hugetlb"]
        assert h["grown"] > 0 and h["pages_migrated"] > 0  # growth had to migrate
        assert h["ranges_failed"] > 0 and h["grow_failed"] > 0  # and was refused too
        assert h["faults"] > 0 and m["compaction"]["deferred"] > 0
    if name == "slab_churn":
        slab = m["slab"]
        # shrinkers freed objects, and slab pages came back only as slabs emptied:
        # far fewer pages than the objects freed would fill
        assert slab["objects_shrunk"] > 0 and 0 < slab["pages_freed"]
        assert slab["pages_freed"] * 4096 < slab["objects_shrunk"] * 192
        assert 0 < slab["utilization"] < 1
        assert m["workingset"]["refaults"] > 0 and m["workingset"]["cache_trim_passes"] > 0
    if name == "two_nodes_resize":
        assert len(res["machine"]["nodes"]) == 2
        assert m["zone_resizes"] > 0 and m["reclaim"]["scanned_for_unmovable"] > 0
        assert all(n > 0 for n in m["kcompactd"]["runs"])  # both nodes' kcompactd ran
        assert m["hooks"]["placement"]["calls"] > 0
    if name == "thp_khugepaged":
        assert m["khugepaged"]["pages_collapsed"] > 0
        assert m["alloc"]["direct_compaction"] > 0 and m["compaction"]["pinned_pages"] > 0
    if name == "hugetlb_pagecache":
        h = m["hugetlb"]
        assert h["grown"] > 0 and h["pages_migrated"] > 0 and h["ranges_failed"] > 0
        assert h["faults"] > 0 and m["reclaim"]["file_evictions"] > 0
    if name == "tiny_machine":
        assert m["oom_kills"] > 0


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_cli_check_run_exits_zero(engine: str, tmp_path, capsys) -> None:
    out = tmp_path / "run.json"
    assert main(["mm", "run", "--check", "--engine", engine, "--json", str(out),
                 str(STRESS / "pagecache_fixed.toml")]) == 0
    text = capsys.readouterr().out
    assert "pagecache_fixed" in text and "invariants held" in text
    res = json.loads(out.read_text())
    assert set(res["engines"].values()) == {engine}
    assert res["metrics"]["tick"] == res["duration"] - 1


@pytest.mark.parametrize("engine", ["interp", "jit"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_scenarios_run_to_their_end(seed: int, engine: str) -> None:
    sc = random_scenario(seed)
    res = run(seed, engine)
    assert res["metrics"]["tick"] == sc["duration"] - 1
    assert set(res["engines"].values()) <= {engine}
    assert len(res["engines"]) == len(sc["attach"])
