"""Bulk work on a fragmented 64 GiB machine: wall time of a full invariant
check (``MM.check``), a metrics collection (``MM.metrics``, median of 5)
and a full compaction of every zone (``compact_zone(z, -1)``, as proactive
compaction runs it), then a second one for a 1 GiB block in SYNC mode
("rescan": ignoring skip bits, for a goal not reached, the scanners cross
each zone without a free 1 GiB block until they meet, with little left to
migrate, so it measures them).

    python benchmarks/bench_bulk.py [RUNS] [--baseline DIR] [--gib N]

The machine: two nodes of N/2 GiB (a quarter of each movable); on each,
THP over all but 2 GiB, then two processes fault 512 MiB of 4 KiB pages in turn
with an unmovable slab page after every 64 pairs, and one of them exits
(every other page is free again).  Compaction runs with proactiveness 100
(until a zone's fragmentation score is 5, or its scanners meet).  With
``--baseline DIR`` (another checkout of the project, e.g. ``git archive
main``) every run measures both trees, alternating, each in a fresh
process, and prints the before/after ratios of the medians and whether the
two trees ended in the same state (a digest of the metrics).
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
SMALL = 512 << 20  # bytes of 4 KiB pages per process
STEPS = ("build", "check", "metrics", "compaction", "rescan")


def measure(gib: int) -> dict[str, float | str]:
    """Build the machine and time each step once (run in the tree under test)."""
    from mmcore.constants import MAX_ORDER
    from mmcore.mm import MM
    from mmcore.phys.compaction.control import Mode
    from mmcore.phys.physmem import MachineSpec, NodeSpec
    from mmcore.sources import Source

    out: dict[str, float | str] = {}
    t = time.perf_counter()
    node = NodeSpec(gib // 2 * GIB_PAGES, gib // 8 * GIB_PAGES)
    mm = MM(MachineSpec((node, node)))
    mm.compaction.proactiveness = 100  # compact until the zone is unfragmented
    for nid in range(2):
        big = mm.spawn(home_node=nid)
        thp = (gib // 2 - 2) << 30  # all but 2 GiB of the node
        vb = big.mmap(thp, "thp")
        for off in range(0, thp, 2 << 20):
            big.fault(vb + off)
        a, b = mm.spawn(home_node=nid), mm.spawn(home_node=nid)
        va, vb = a.mmap(SMALL, "none"), b.mmap(SMALL, "none")
        for i, off in enumerate(range(0, SMALL, 4096)):
            a.fault(va + off)
            b.fault(vb + off)
            if i % 64 == 63:
                mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 1 << 30, nid=nid)
        mm.exit(b)  # every other 4 KiB page of the region is free again
    out["build"] = time.perf_counter() - t
    t = time.perf_counter()
    mm.check()
    out["check"] = time.perf_counter() - t
    times = []
    for _ in range(5):
        t = time.perf_counter()
        mm.metrics()
        times.append(time.perf_counter() - t)
    out["metrics"] = statistics.median(times)
    for step, order, mode in (("compaction", -1, Mode.SYNC_LIGHT),
                              ("rescan", MAX_ORDER, Mode.SYNC)):
        t = time.perf_counter()
        for z in mm.phys.zones:
            mm.compaction.compact_zone(z, order, mode=mode)
        out[step] = time.perf_counter() - t
        out[f"migrated_{step}"] = float(mm.compaction.migrated)
    m = mm.metrics()
    m.pop("hooks", None)
    out["digest"] = hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()[:16]
    return out


def run_tree(tree: Path, gib: int) -> dict[str, float | str]:
    return measure_in(tree, "bench_bulk", gib)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="?", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="another checkout to compare against")
    ap.add_argument("--gib", type=int, default=64, help="machine size (multiple of 8)")
    args = ap.parse_args()
    if args.gib < 16 or args.gib % 8:
        ap.error("--gib must be a multiple of 8, at least 16")
    if args.baseline is not None and not (args.baseline / "mmcore").is_dir():
        ap.error(f"--baseline {args.baseline}: not a checkout of the project")
    trees = {"this": HERE}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), "this": HERE}
    results: dict[str, list[dict[str, float | str]]] = {k: [] for k in trees}
    for _ in range(args.runs):
        for name, tree in trees.items():
            results[name].append(run_tree(tree, args.gib))
    med = {name: {s: statistics.median(float(r[s]) for r in rs) for s in STEPS}
           for name, rs in results.items()}
    print(f"{args.gib} GiB machine, median of {args.runs} runs (seconds):")
    for name, m in med.items():
        digests = sorted({str(r["digest"]) for r in results[name]})
        first = results[name][0]
        moved, again = (int(float(first[f"migrated_{s}"])) for s in ("compaction", "rescan"))
        print(f"  {name:8s} " + "  ".join(f"{s} {m[s]:.3f}" for s in STEPS)
              + f"  migrated {moved} (+{again - moved})  state {','.join(digests)}")
    if "baseline" in med:
        print("  speed-up " + "  ".join(
            f"{s} {med['baseline'][s] / med['this'][s]:.1f}x" for s in STEPS))
        same = {str(r["digest"]) for rs in results.values() for r in rs}
        print("  end state identical in both trees" if len(same) == 1
              else "  END STATES DIFFER between the trees")


if __name__ == "__main__":
    main()
