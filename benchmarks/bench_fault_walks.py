"""Faults through the translation path: page-table walks per fault and
faults per second of ``Process.access`` on untouched 4 KiB pages (a TLB
miss, a hardware walk, the fault, the TLB fill), as the scenario runner
makes them.

    python benchmarks/bench_fault_walks.py [--faults N] [--runs R] [--against TREE]

Each measurement is a fresh process (N = 100,000 faults on one 8 GiB node,
CPU time of the loop); ``--against TREE`` measures another checkout in the
same rounds.  Also prints the ``get_pte`` calls per fault (counted in a
separate, untimed run).
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


def access_run(n: int, count: bool = False) -> float:
    """CPU seconds for ``n`` faulting accesses, or get_pte calls per fault (``count``)."""
    from mmcore.mm import MM
    from mmcore.phys.physmem import MachineSpec, NodeSpec

    mm = MM(MachineSpec((NodeSpec(2 << 20),)))
    p = mm.spawn()
    va = p.mmap(n * 4096, "none")
    calls = [0]
    if count:
        get_pte = p.pt.get_pte

        def counted(*a: object, **k: object) -> object:
            calls[0] += 1
            return get_pte(*a, **k)
        p.pt.get_pte = counted  # type: ignore[method-assign]
    access = p.access
    t = time.process_time()
    for i in range(n):
        access(va + i * 4096)
    elapsed = time.process_time() - t
    assert mm.stats.faults == n
    return calls[0] / n if count else elapsed


def measure(tree: Path, n: int, count: bool = False) -> float:
    code = (f"import sys; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(HERE)!r})\n"
            f"import bench_fault_walks as b; print(b.access_run({n}, {count}))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(tree)),
                         check=True, capture_output=True, text=True, cwd=tree).stdout
    return float(out.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faults", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--against", type=Path, action="append", default=[])
    args = ap.parse_args()
    trees = [ROOT, *[t.resolve() for t in args.against]]
    times: dict[Path, list[float]] = {t: [] for t in trees}
    for _ in range(args.runs):
        for tree in trees:
            times[tree].append(measure(tree, args.faults))
    print(f"{args.faults:,} faulting accesses (4 KiB, one 8 GiB node), CPU time, "
          f"medians of {args.runs} interleaved runs")
    first = statistics.median(times[ROOT])
    for tree in trees:
        t = statistics.median(times[tree])
        walks = measure(tree, 2_000, count=True)
        print(f"{str(tree):28s} {t:6.2f} s CPU  {args.faults / t:>9,.0f} faults/s  "
              f"{t / first:5.2f}x  get_pte per fault {walks:.2f}")


if __name__ == "__main__":
    main()
