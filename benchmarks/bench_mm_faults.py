"""Anonymous faults per second, 4 KiB and 2 MiB (THP), with no program
attached: ``Process.fault`` on each page of a fresh mapping of one 16 GiB
node.

    python benchmarks/bench_mm_faults.py [--runs R] [--against TREE]

Each measurement is a fresh process (100,000 4 KiB faults; 7,000 2 MiB
faults), CPU time of the fault loop; configurations run interleaved, R
rounds (default 5), medians printed with their time relative to this tree.
``--against TREE`` measures another checkout in the same rounds.

The frame arrays are committed by the OS page by page on first write, so
the first 2 MiB faults on a fresh machine also pay for committing them
(each fault writes a block head 512 frames from the last: about 3 pages
of the arrays).  The "warm" rows fault the same mapping again after the first process
exited, on arrays already committed (mean of 3 processes, one after the
other: 7,000 faults alone take about 0.03 s).  The
"2 MiB+boot" row counts the machine's construction too: a tree that
commits the arrays at boot pays for them there.  The "exit"
row times the exit of a sparse process: one 4 KiB page in each of 4,096
2 MiB regions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = (("none", 100_000, 4096), ("thp", 7_000, 2 << 20), ("thp-boot", 7_000, 2 << 20),
         ("none-warm", 100_000, 4096), ("thp-warm", 7_000, 2 << 20), ("exit", 4_096, 2 << 20))
WARM_ROUNDS = 3
LABELS = {"none": "4 KiB", "thp": "2 MiB", "thp-boot": "2 MiB+boot", "none-warm": "4 KiB warm",
          "thp-warm": "2 MiB warm", "exit": "exit"}


def exit_run(n: int, step: int) -> float:
    """CPU seconds for the exit of a process with one 4 KiB page in each of
    ``n`` 2 MiB regions (``step`` bytes apart) of a 4 KiB mapping."""
    from mmcore.mm import MM
    from mmcore.phys.physmem import MachineSpec, NodeSpec

    mm = MM(MachineSpec((NodeSpec(1 << 22),)))
    p = mm.spawn()
    va = p.mmap(n * step, "none")
    for i in range(n):
        p.fault(va + i * step + (i % 7 << 12))
    t = time.process_time()
    mm.exit(p)
    elapsed = time.process_time() - t
    assert not mm.procs and mm.stats.faults == n
    return elapsed


def fault_run(huge: str, n: int, step: int) -> float:
    """CPU seconds for ``n`` faults ``step`` bytes apart in a ``huge`` mapping
    (``thp-warm``, ``none-warm``: the mean of WARM_ROUNDS processes after a
    first one, each making the same faults and exiting; ``exit``:
    :func:`exit_run`)."""
    if huge == "exit":
        return exit_run(n, step)
    from mmcore.mm import MM
    from mmcore.phys.physmem import MachineSpec, NodeSpec

    boot = time.process_time()
    mm = MM(MachineSpec((NodeSpec(1 << 22),)))  # 16 GiB
    huge, warm, with_boot = huge.split("-")[0], huge.endswith("-warm"), huge.endswith("-boot")
    elapsed = 0.0
    for r in range(1 + WARM_ROUNDS if warm else 1):
        mm.stats.faults = 0
        p = mm.spawn()
        va = p.mmap(n * step, huge)
        fault = p.fault
        t = time.process_time()
        for i in range(n):
            fault(va + i * step)
        if r or not warm:
            elapsed += time.process_time() - (boot if with_boot else t)
        assert mm.stats.faults == n and p.rss_pages == n * step >> 12
        mm.exit(p)
    return elapsed / (WARM_ROUNDS if warm else 1)


def measure(tree: Path, huge: str, n: int, step: int) -> float:
    code = (f"import sys; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(HERE)!r})\n"
            f"import bench_mm_faults as b; print(b.fault_run({huge!r}, {n}, {step}))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(tree)),
                         check=True, capture_output=True, text=True, cwd=tree).stdout
    return float(out.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--against", type=Path, action="append", default=[])
    args = ap.parse_args()
    trees = [ROOT, *[t.resolve() for t in args.against]]
    times: dict[tuple[Path, str], list[float]] = {(t, c[0]): [] for t in trees for c in CASES}
    for r in range(args.runs):
        for huge, n, step in CASES:
            for tree in trees:
                times[tree, huge].append(measure(tree, huge, n, step))
        print(f"round {r + 1}/{args.runs} done", file=sys.stderr)
    print(f"faults on one 16 GiB node, no program, CPU time, medians of {args.runs} "
          f"interleaved runs")
    for huge, n, _ in CASES:
        first = statistics.median(times[ROOT, huge])
        for tree in trees:
            t = statistics.median(times[tree, huge])
            label, unit = LABELS[huge], "regions" if huge == "exit" else "faults"
            print(f"{str(tree):24s} {label:10s} {unit:7s} {n / t:>10,.0f} /s  {t:5.2f} s CPU  "
                  f"{t / first:5.2f}x")


if __name__ == "__main__":
    main()
