"""The huge-page mechanisms in whole scenarios: who compacts for a THP
fault under each defrag setting, khugepaged, the new scenario keys."""

import copy

import pytest

from mmcore.errors import ScenarioError
from mmcore.scenario.runner import run_scenario
from mmcore.scenario.schema import parse_scenario

BASE = {
    "seed": 7,
    "duration": 60,
    # kswapd balances to the high watermark; a wide gap (3%) leaves room for
    # compaction (compaction_suitable wants low + 2 << order free pages)
    "machine": {"nodes": [{"memory": "256MiB"}], "watermark_scale_factor": 300},
    "mm": {"kcompactd_interval": 10},
    "phases": [
        {   # page cache fills memory; THP processes come and go
            "processes": {
                "arrival_rate": 0.5, "max_processes": 6, "lifetime": [10, 30],
                "size": ["16MiB", "48MiB"], "huge": {"thp": 1}, "touch_huge": True,
                "faults_per_tick": 16, "accesses_per_tick": 16, "munmap_share": 0.3,
            },
            "kernel": {"slab_rate": 20, "netbuf_rate": 5, "orders": [0, 0], "lifetime": [2, 40],
                       "long_lived_share": 0.1, "long_lifetime": [50, 200]},
            "file": {"files": 1, "file_size": "256MiB", "reads_per_tick": 2048},
        },
    ],
}  # fmt: skip


def scenario(**mm):
    sc = copy.deepcopy(BASE)
    sc["mm"].update(mm)
    return sc


def test_defrag_decides_who_compacts_for_thp_faults():
    runs = {d: run_scenario(scenario(thp={"defrag": d}), check=d == "defer")["metrics"]
            for d in ("defer", "always", "madvise")}
    for m in runs.values():
        assert m["huge_2m"]["attempts"] > m["huge_2m"]["successes"]  # some THP faults failed
        assert set(m["kcompactd"]) >= {"wakeups", "runs", "pages_migrated", "successes",
                                        "failures", "proactive_passes"}
    assert runs["always"]["alloc"]["direct_compaction"] > 0  # compacts at fault
    assert runs["madvise"]["alloc"]["direct_compaction"] == 0  # only for madvised VMAs
    assert runs["defer"]["alloc"]["direct_compaction"] == 0  # wakes kswapd instead
    assert runs["defer"]["reclaim"]["kswapd_runs"] > runs["madvise"]["reclaim"]["kswapd_runs"]


def test_khugepaged_collapses_in_a_run():
    sc = scenario(thp={"enabled": "madvise"},
                  khugepaged={"scan_sleep_millisecs": 100, "max_ptes_none": 511})
    sc["phases"][0]["processes"]["madvise"] = False
    off = run_scenario(sc)["metrics"]
    sc["phases"][0]["processes"]["madvise"] = True
    on = run_scenario(sc, check=True)["metrics"]
    assert off["khugepaged"]["ranges_scanned"] == 0  # not eligible: never scanned
    assert on["khugepaged"]["passes"] > 0 and on["khugepaged"]["ranges_scanned"] > 0


@pytest.mark.parametrize("mm, key", [
    ({"hugetlb": {"pages": 2}}, "mm.hugetlb.pages"),
    ({"hugetlb": {"resize": [[1]]}}, "mm.hugetlb.resize"),
    ({"thp": {"defrag": "sometimes"}}, "mm.thp.defrag"),
    ({"khugepaged": {"max_ptes_none": 512}}, "mm.khugepaged.max_ptes_none"),
    ({"pin_rate": 2}, "mm.pin_rate"),
])
def test_bad_keys_name_themselves(mm, key):
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        parse_scenario(scenario(**mm))
