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
and the cost scan balance.
"""

from __future__ import annotations

import pytest

from bpfvm.cli import main
from mmcore.scenario.runner import run_scenario
from tests.conftest import DATA

STRESS = DATA / "mm_stress"
SCENARIOS = sorted(p.stem for p in STRESS.glob("*.toml"))


def test_the_stress_corpus_is_there():
    assert {"pagecache_resize", "pagecache_fixed", "unmovable_churn", "hugetlb_growth",
            "slab_churn"} <= set(SCENARIOS)


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


def test_cli_check_run_exits_zero(capsys) -> None:
    assert main(["mm", "run", "--check", "--engine", "jit",
                 str(STRESS / "pagecache_fixed.toml")]) == 0
    assert "pagecache_fixed" in capsys.readouterr().out
