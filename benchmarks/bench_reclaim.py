"""Reclaim-heavy workloads on a one-node machine of N GiB: CPU time of the
whole run and of the reclaim passes in it (``Reclaimer.shrink_node``,
direct reclaim and kswapd).

    python benchmarks/bench_reclaim.py [RUNS] [--baseline DIR] [--gib N]

Workloads (kswapd runs every 1,024 operations, as at the end of a tick):

- ``file``: page cache larger than memory: a file of 1.5 × memory read
  sequentially twice (every read of the second pass misses again);
- ``anon``: anonymous memory under swap pressure: a process touches 1.0 ×
  memory of 4 KiB pages while 0.5 × memory of a file is read, both twice,
  page by page in turn, with anon and file scanned alike (``scan_balance``
  "fixed", swappiness 200: new anon pages are mapped young, so under the
  default cost model reclaim would drop the file pages alone).

With ``--baseline DIR`` (another checkout, e.g. ``git archive main``) every
run measures both trees, alternating, each in a fresh process, and prints
the ratios of the medians and whether the two trees ended in the same state
(a digest of the metrics).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

from intree import measure_in

HERE = Path(__file__).resolve().parents[1]
GIB_PAGES = 1 << 18
WORKLOADS = ("file", "anon")
TICK = 1024  # operations between kswapd runs


def measure(workload: str, gib: float) -> dict[str, float | str]:
    """Run one workload and time it (in the tree under test)."""
    from mmcore.mm import MM, MMConfig
    from mmcore.phys.physmem import MachineSpec, NodeSpec

    pages = int(gib * GIB_PAGES) & -512
    config = MMConfig(scan_balance="fixed", swappiness=200) if workload == "anon" else None
    mm = MM(MachineSpec((NodeSpec(pages),)), config)
    rc = mm.reclaim
    spent = [0.0]
    shrink = rc.shrink_node

    def timed(*args: int) -> int:
        t = time.process_time()
        try:
            return shrink(*args)
        finally:
            spent[0] += time.process_time() - t

    rc.shrink_node = timed  # type: ignore[method-assign]
    ops = [0]

    def tick() -> None:
        ops[0] += 1
        if ops[0] % TICK == 0:
            mm.background()

    t0 = time.process_time()
    if workload == "file":
        f = mm.new_file(pages * 3 // 2)
        for _ in range(2):
            for i in range(f.npages):
                f.read(i)
                tick()
    else:
        p = mm.spawn()
        n = pages
        va = p.mmap(n << 12, "none")
        f = mm.new_file(pages // 2)
        for _ in range(2):
            for i in range(n):
                p.access(va + (i << 12))
                if i < f.npages:
                    f.read(i)
                tick()
    total = time.process_time() - t0
    m = mm.metrics()
    m.pop("hooks", None)
    return {"total": total, "reclaim": spent[0], "scanned": float(mm.stats.pgscan),
            "reclaimed": float(mm.stats.pgsteal),
            "swapouts": float(mm.stats.swapouts),
            "digest": hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()[:16]}


def run_tree(tree: Path, workload: str, gib: float) -> dict[str, float | str]:
    return measure_in(tree, "bench_reclaim", workload, gib)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="?", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="another checkout to compare against")
    ap.add_argument("--gib", type=float, default=0.5, help="memory of the machine")
    ap.add_argument("--workload", choices=WORKLOADS, action="append",
                    help="run only these (default: all)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("RUNS must be at least 1")
    if not 0.25 <= args.gib <= 64:
        ap.error("--gib must be between 0.25 and 64")
    if args.baseline is not None and not (args.baseline / "mmcore").is_dir():
        ap.error(f"--baseline {args.baseline}: not a checkout of the project")
    trees = {"this": HERE}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), "this": HERE}
    print(f"{args.gib:g} GiB machine, median of {args.runs} runs (seconds):")
    for workload in args.workload or WORKLOADS:
        results: dict[str, list[dict[str, float | str]]] = {k: [] for k in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():
                results[name].append(run_tree(tree, workload, args.gib))
        med = {name: {s: statistics.median(float(r[s]) for r in rs) for s in ("total", "reclaim")}
               for name, rs in results.items()}
        for name, m in med.items():
            first = results[name][0]
            digests = sorted({str(r["digest"]) for r in results[name]})
            print(f"  {workload:6s} {name:8s} total {m['total']:7.2f}  reclaim {m['reclaim']:7.2f}"
                  f"  scanned {int(float(first['scanned'])):,} reclaimed "
                  f"{int(float(first['reclaimed'])):,} (swapped {int(float(first['swapouts'])):,})"
                  f"  state {','.join(digests)}")
        if "baseline" in med:
            b, t = med["baseline"], med["this"]
            same = {str(r["digest"]) for rs in results.values() for r in rs}
            print(f"  {workload:6s} speed-up total {b['total'] / t['total']:.2f}x  reclaim "
                  f"{b['reclaim'] / t['reclaim']:.2f}x  "
                  + ("same end state" if len(same) == 1 else "END STATES DIFFER"))


if __name__ == "__main__":
    main()
