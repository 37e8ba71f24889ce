"""Sweeps on Dask: scaling over local workers and the cost of the cluster path.

1. A 16-run sweep (tier_placement.toml, seeds 1-8 x builtin/programs, about
   a second a run) on a LocalCluster of 2 worker processes vs 1 (each
   timing includes starting the cluster), and vs in-process.
   Target: 2 workers >= 1.8x faster than 1.
2. Per-run overhead of the cluster path (``--cluster ADDR``: a running
   scheduler with one worker process) vs in-process, on 64 tiny runs
   (about 20 ms each): (cluster time - in-process time) / runs, connecting
   to the scheduler included.  Target: <= 0.5 s per run.

    python benchmarks/bench_sweep.py [REPEATS]     (default 3; medians are printed)
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcore.studies import sweep as sw  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCALING = f"""\
scenario = "{ROOT / 'programs' / 'tier_placement.toml'}"
seeds = [1, 2, 3, 4, 5, 6, 7, 8]
variants = ["builtin", "programs"]
"""
TINY = """\
name = "tiny"
duration = 12
[machine]
nodes = [ { memory = "64MiB", tier = "dram" }, { memory = "128MiB", tier = "cxl" } ]
distance = [[10, 30], [30, 10]]
[[phases]]
[phases.processes]
arrival_rate = 0.5
max_processes = 4
lifetime = [5, 20]
size = ["4MiB", "16MiB"]
faults_per_tick = 64
accesses_per_tick = 16
hot_share = 0.3
home_nodes = [0]
[[attach]]
hook = "placement"
program = "tier_placement.s"
"""
OVERHEAD = """\
scenario = "tiny.toml"
seeds = [1, 2, 3, 4, 5, 6, 7, 8]
[grid]
"phases.0.processes.hot_share" = [0.1, 0.2, 0.3, 0.4]
"""


def timed(sweep: sw.Sweep, how: sw.Execution) -> float:
    t = time.perf_counter()
    rows: list[dict] = []
    sw.execute(sw.plan(sweep), how, lambda task, row: rows.append(row))
    dt = time.perf_counter() - t
    assert len(rows) == sweep.runs and all(r["status"] == "ok" for r in rows), rows[:1]
    return dt


def main() -> None:
    from distributed import LocalCluster

    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(other work on the machine skews the speed-up)")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "scaling.toml").write_text(SCALING)
        (d / "tiny.toml").write_text(TINY)
        (d / "overhead.toml").write_text(OVERHEAD)
        big = sw.load_sweep(d / "scaling.toml")
        tiny = sw.load_sweep(d / "overhead.toml")

        one, two, inproc = [], [], []
        for _ in range(reps):
            inproc.append(timed(big, sw.Execution(jobs=1)))
            one.append(timed(big, sw.Execution(jobs=1, local_cluster=True)))
            two.append(timed(big, sw.Execution(jobs=2)))
        m1, m2, m0 = (statistics.median(x) for x in (one, two, inproc))
        print(f"{big.runs}-run sweep ({m0 / big.runs:.2f} s a run in-process), median of "
              f"{reps}: in-process {m0:.1f} s, 1 local worker {m1:.1f} s, "
              f"2 local workers {m2:.1f} s")
        print(f"  speed-up 2 workers vs 1: {m1 / m2:.2f}x (target >= 1.8x); "
              f"vs in-process: {m0 / m2:.2f}x")

        local, remote = [], []
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster:
            timed(tiny, sw.Execution(cluster=cluster.scheduler_address))  # warm the worker
            for _ in range(reps):
                local.append(timed(tiny, sw.Execution(jobs=1)))
                remote.append(timed(tiny, sw.Execution(cluster=cluster.scheduler_address)))
        l0, r0 = statistics.median(local), statistics.median(remote)
        per = (r0 - l0) / tiny.runs
        print(f"{tiny.runs} tiny runs, median of {reps}: in-process {l0:.2f} s "
              f"({l0 / tiny.runs * 1000:.0f} ms a run), via --cluster (1 worker) {r0:.2f} s")
        print(f"  cluster-path overhead: {per * 1000:.1f} ms per run (target <= 500 ms)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
