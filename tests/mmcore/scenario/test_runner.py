"""The scenario runner: determinism, check mode, engines by hook name."""

from mmcore.scenario.runner import run_scenario

TINY = {
    "seed": 3,
    "duration": 40,
    "sample_every": 10,
    "machine": {"nodes": [{"memory": "64MiB", "movable": "32MiB"}, {"memory": "64MiB"}]},
    "mm": {"kcompactd_interval": 10, "evacuate_interval": 20},
    "phases": [
        {
            "processes": {
                "arrival_rate": 0.5, "max_processes": 4, "lifetime": [5, 20],
                "size": ["4MiB", "24MiB"], "huge": {"none": 1, "thp": 1},
                "faults_per_tick": 64, "accesses_per_tick": 16, "munmap_share": 0.1,
            },
            "kernel": {"slab_rate": 3, "netbuf_rate": 3, "orders": [0, 2], "lifetime": [2, 30]},
            "file": {"files": 2, "file_size": "16MiB", "reads_per_tick": 32},
        }
    ],
    "attach": [{"hook": "mm_zone_resize", "program": "contiguitas_resize.s"}],
}  # fmt: skip


def strip(results):
    return {k: v for k, v in results.items() if k != "wall_seconds"}


def test_same_seed_same_results_and_check_mode_passes():
    ticks = []
    a = run_scenario(TINY, check=True, progress=lambda t, n: ticks.append((t, n)))
    b = run_scenario(TINY)
    assert strip(a) == strip(b)
    assert ticks[-1] == (40, 40)
    assert a["metrics"]["faults"] > 0 and len(a["series"]) == 5
    assert a["attach"] == [{"hook": "mm_zone_resize", "program": "contiguitas_resize.s"}]


def test_other_seed_differs():
    other = dict(TINY, seed=4)
    assert run_scenario(other)["metrics"]["faults"] != run_scenario(TINY)["metrics"]["faults"]


def test_engines_attach_by_hook_name():
    class Grow:
        def run(self, ctx):
            return 1

    r = run_scenario(dict(TINY, duration=30), engines={"mm_zone_resize": Grow()})
    assert r["metrics"]["hooks"]["mm_zone_resize"]["attached"]
