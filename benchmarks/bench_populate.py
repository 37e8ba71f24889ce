"""Populating a machine: every 4 KiB page of one node's memory faulted in
by one process (``Process.populate``, the batched path the scenario
runner's touch uses), or every 2 MiB page (THP) with one access per page.
Targets (issue 18): 256 GiB with 4 KiB pages in <= 10 minutes, with THP
in <= 1 minute.

    python benchmarks/bench_populate.py [--gib N] [--thp] [--against TREE]

Maps ``N`` GiB (default 4) on a machine of N GiB plus 1 GiB of headroom
(one node, so that the watermarks leave room for the mapping) and times
the populate loop in CPU time; prints the boot time (``MM(...)``), the
populate time, pages per second, the time extrapolated to 256 GiB and the
process's peak RSS.  ``--against TREE`` runs the same in another checkout
(one access per page there if it has no ``populate``), in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def populate_run(gib: float, thp: bool) -> dict[str, float]:
    from mmcore.mm import MM
    from mmcore.phys.physmem import MachineSpec, NodeSpec

    pages = int(gib * (1 << 18))
    t = time.process_time()
    mm = MM(MachineSpec((NodeSpec(pages + (1 << 18)),)))
    boot = time.process_time() - t
    p = mm.spawn()
    va = p.mmap(pages << 12, "thp" if thp else "none")
    t = time.process_time()
    if thp:
        access = p.access
        for off in range(0, pages << 12, 2 << 20):
            access(va + off)
    elif hasattr(p, "populate"):
        p.populate(va, pages)
    else:
        access = p.access
        for i in range(pages):
            access(va + (i << 12))
    elapsed = time.process_time() - t
    assert p.rss_pages == pages and mm.stats.oom == 0, (p.rss_pages, pages)
    assert not thp or p.present[1] == pages >> 9
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)  # KiB -> GiB
    return {"gib": gib, "boot": boot, "populate": elapsed, "pages": pages, "rss_gib": rss}


def measure(tree: Path, gib: float, thp: bool) -> dict[str, float]:
    code = (f"import sys, json; sys.path.insert(0, {str(tree)!r}); "
            f"sys.path.insert(1, {str(HERE)!r})\n"
            f"import bench_populate as b; print(json.dumps(b.populate_run({gib}, {thp})))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(tree)),
                         check=True, capture_output=True, text=True, cwd=tree).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=4.0)
    ap.add_argument("--thp", action="store_true", help="2 MiB pages (one access each)")
    ap.add_argument("--against", type=Path, action="append", default=[])
    args = ap.parse_args()
    if args.gib <= 0:
        print("bench_populate: --gib must be positive", file=sys.stderr)
        sys.exit(2)
    kind = "THP (2 MiB)" if args.thp else "4 KiB"
    print(f"populate {args.gib:g} GiB with {kind} pages, one node, CPU time")
    for tree in [ROOT, *[t.resolve() for t in args.against]]:
        r = measure(tree, args.gib, args.thp)
        n = r["pages"] >> 9 if args.thp else r["pages"]
        at256 = r["populate"] * 256 / args.gib
        print(f"{str(tree):24s} boot {r['boot']:6.2f} s  populate {r['populate']:8.2f} s  "
              f"{n / r['populate']:>10,.0f} pages/s  256 GiB: {at256 / 60:6.1f} min  "
              f"peak RSS {r['rss_gib']:.2f} GiB")


if __name__ == "__main__":
    main()
