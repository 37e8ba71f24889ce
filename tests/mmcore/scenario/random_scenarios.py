"""Random small scenarios that must run to their end with every invariant
checked: one to three nodes of 32-320 MiB with or without a movable zone,
random MM settings (THP enabled/defrag, khugepaged, hugetlb pool with
run-time resizes on one or two nodes of 1-2 GiB, pin rate, scan balance,
watermark gaps), overlapping
phases of processes, kernel allocations, slab objects and page cache, and a
random set of the shipped policy programs attached.  The same seed gives
the same scenario.

Run many by hand (each on both engines)::

    python -m tests.mmcore.scenario.random_scenarios --runs 50 [--first 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from typing import Any

from mmcore.scenario.runner import run_scenario

PROGRAMS = {
    "zone_resize": "contiguitas_resize.s",
    "lifetime": "lifetime_placement.s",
    "placement": "tier_placement.s",
    "hugepage": "thp_policy.s",
    "reclaim": "reclaim_policy.s",
}
CACHES = ("kmalloc-64", "kmalloc-256", "kmalloc-2k", "kmalloc-8k", "dentry", "inode_cache",
          "radix_tree_node")


def _mib(n: int) -> str:
    return f"{n}MiB"


def _pair(rng: random.Random, lo: int, hi: int) -> list[int]:
    a = rng.randint(lo, hi)
    return [a, rng.randint(a, hi)]


def _phase(rng: random.Random, duration: int, memory: int, nodes: int) -> dict[str, Any]:
    start = rng.randrange(0, duration // 2)
    ph: dict[str, Any] = {"start": start}
    if rng.random() < 0.3:
        ph["end"] = rng.randint(start + 1, duration)
    if rng.random() < 0.8:
        lo = rng.randint(1, max(1, memory // 4))
        ph["processes"] = {
            "arrival_rate": rng.choice((0.2, 0.5, 1.0)),
            "max_processes": rng.randint(1, 6),
            "lifetime": _pair(rng, 2, 30),
            "size": [_mib(lo), _mib(rng.randint(lo, memory))],
            "huge": {"none": rng.random(), "thp": rng.random(),
                     "1g": rng.random() if memory >= 1024 else 0.0},
            "faults_per_tick": rng.choice((32, 256, 1024)),
            "accesses_per_tick": rng.choice((0, 16, 64)),
            "munmap_share": rng.choice((0.0, 0.1, 0.3)),
            "hot_share": rng.choice((0.0, 0.5)),
            "touch_huge": rng.random() < 0.3,
            "madvise": rng.random() < 0.3,
        }
        if nodes > 1 and rng.random() < 0.5:
            ph["processes"]["home_nodes"] = [rng.randrange(nodes)]
    if rng.random() < 0.8:
        k: dict[str, Any] = {
            "slab_rate": rng.choice((0, 4, 40)),
            "slab_reclaimable_share": rng.random(),
            "netbuf_rate": rng.choice((0, 4, 20)),
            "pagetable_rate": rng.choice((0, 1, 4)),
            "orders": _pair(rng, 0, 3),
            "lifetime": _pair(rng, 1, 40),
            "long_lived_share": rng.choice((0.0, 0.05, 0.5)),
            "long_lifetime": _pair(rng, 20, 2000),
        }
        if rng.random() < 0.6:
            k["object_rate"] = rng.choice((100, 1000, 4000))
            k["object_lifetime"] = _pair(rng, 1, 5000)
            k["object_lifetime_alpha"] = rng.choice((0.8, 1.2, 3.0))
            if rng.random() < 0.5:
                k["caches"] = {c: rng.random() + 0.01 for c in rng.sample(CACHES, 3)}
        ph["kernel"] = k
    if rng.random() < 0.7:
        ph["file"] = {"files": rng.randint(1, 3),
                      "file_size": _mib(rng.randint(1, 2 * memory)),
                      "reads_per_tick": rng.choice((64, 1024, 8192))}
    return ph


def random_scenario(seed: int) -> dict[str, Any]:
    """A scenario dict (as parsed from TOML) for ``seed``."""
    rng = random.Random(seed)
    nodes = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        mem = rng.choice((32, 64, 128, 192, 320))
        node: dict[str, Any] = {"memory": _mib(mem)}
        if rng.random() < 0.6:
            node["movable"] = _mib(2 * rng.randint(1, mem // 2 - 1))
        nodes.append(node)
    if rng.random() < 0.2:  # machines large enough for 1 GiB pages
        nodes = rng.choice((
            [{"memory": "2GiB", "movable": rng.choice(("0MiB", "1GiB"))}],
            [{"memory": "1GiB"}, {"memory": "2GiB", "movable": "1GiB"}],
        ))
    memory = max(int(n["memory"].removesuffix("MiB").removesuffix("GiB")) *
                 (1024 if n["memory"].endswith("GiB") else 1) for n in nodes)
    duration = rng.randint(10, 30)
    mm: dict[str, Any] = {
        "kcompactd_interval": rng.choice((1, 5, 20)),
        "evacuate_interval": rng.choice((0, 0, 5, 15)),
        "swappiness": rng.choice((0, 60, 200)),
        "scan_balance": rng.choice(("cost", "fixed")),
        "pin_rate": rng.choice((0.0, 0.0, 0.001, 0.05)),
        "extfrag_threshold": rng.choice((0, 500, 1000)),
        "compaction_proactiveness": rng.choice((0, 20, 100)),
        "check_interval": rng.choice((1, 4, 16)),
        "thp": {"enabled": rng.choice(("always", "madvise", "never")),
                "defrag": rng.choice(("always", "defer", "defer+madvise", "madvise", "never"))},
    }
    if rng.random() < 0.5:
        mm["khugepaged"] = {"pages_to_scan": rng.choice((512, 4096, 65536)),
                            "scan_sleep_millisecs": rng.choice((10, 100, 10000)),
                            "max_ptes_none": rng.choice((0, 64, 511))}
    if memory >= 1024 and rng.random() < 0.8:
        mm["hugetlb"] = {
            "pages": rng.randint(0, 1), "overcommit": rng.randint(0, 2),
            "movable": rng.random() < 0.5,
            "resize": sorted([rng.randrange(duration), rng.randint(0, 2)] for _ in range(3)),
        }
    sc: dict[str, Any] = {
        "name": f"random{seed}", "seed": seed, "duration": duration,
        "machine": {"nodes": nodes,
                    "watermark_scale_factor": rng.choice((10, 10, 200, 1000))},
        "mm": mm,
        "phases": [_phase(rng, duration, memory, len(nodes)) for _ in range(rng.randint(1, 3))],
        "attach": [{"hook": h, "program": p} for h, p in PROGRAMS.items() if rng.random() < 0.4],
    }
    return sc


def run(seed: int, engine: str) -> dict[str, Any]:
    return run_scenario(random_scenario(seed), check=True, engine=engine)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--first", type=int, default=0)
    args = ap.parse_args()
    failed = 0
    for seed in range(args.first, args.first + args.runs):
        for engine in ("interp", "jit"):
            t = time.monotonic()
            try:
                res = run(seed, engine)
                m = res["metrics"]
                print(f"seed {seed} {engine}: ok in {time.monotonic() - t:.1f} s, "
                      f"slow path {m['alloc']['slowpath']:,}, OOM kills {m['oom_kills']}",
                      flush=True)
            except Exception:  # noqa: BLE001 - report every failure and go on
                failed += 1
                print(f"seed {seed} {engine}: FAILED", flush=True)
                traceback.print_exc()
    print(f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
