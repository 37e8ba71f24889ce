"""Resident memory of large simulated machines: RSS after construction and
after populating a share with THP, each size in a fresh process (so the
peak is its own).  Target: a 256 GiB machine (67 M frames) within 2 GiB.

    python benchmarks/bench_mm_rss.py [GIB ...] [--thp-share F] [--baseline DIR]

Sizes default to 64 and 256 GiB (two nodes each, a quarter of each node
movable).  Populating: THP over ``F`` of memory (default 0.25), 1 GiB of
4 KiB anonymous pages and 1 GiB of page cache, then a metrics collection.
With ``--baseline DIR`` (another checkout, e.g. ``git archive main``) each
size is measured in both trees.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from intree import measure_in

HERE = Path(__file__).resolve().parents[1]
GIB_PAGES = 1 << 18


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(gib: int, thp_share: float) -> dict[str, float]:
    """Build and populate one machine (run in the tree under test)."""
    from mmcore.mm import MM
    from mmcore.phys.physmem import MachineSpec, NodeSpec

    out = {"bare": rss_mib()}
    t = time.perf_counter()
    node = NodeSpec(gib // 2 * GIB_PAGES, gib // 8 * GIB_PAGES)
    mm = MM(MachineSpec((node, node)))
    out["build_s"] = time.perf_counter() - t
    out["built"] = rss_mib()
    t = time.perf_counter()
    thp = int(gib * thp_share) // 2 << 30
    for nid in range(2):
        p = mm.spawn(home_node=nid)
        va = p.mmap(thp, "thp")
        for off in range(0, thp, 2 << 20):
            p.fault(va + off)
    q = mm.spawn(home_node=1)
    vb = q.mmap(1 << 30, "none")
    for off in range(0, 1 << 30, 4096):
        q.fault(vb + off)
    f = mm.new_file(GIB_PAGES)
    for i in range(GIB_PAGES):
        f.read(i)
    m = mm.metrics()
    out["populate_s"] = time.perf_counter() - t
    out["populated"] = rss_mib()
    out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["page_table_pages"] = m["page_table_pages"]
    return out


def run_tree(tree: Path, gib: int, thp_share: float) -> dict[str, float]:
    return measure_in(tree, "bench_mm_rss", gib, thp_share)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gib", nargs="*", type=int, default=[64, 256])
    ap.add_argument("--thp-share", type=float, default=0.25)
    ap.add_argument("--baseline", type=Path, help="another checkout to compare against")
    args = ap.parse_args()
    if any(g < 16 or g % 8 for g in args.gib):
        ap.error("sizes must be multiples of 8 GiB, at least 16")
    if not 0 <= args.thp_share <= 0.9:
        ap.error("--thp-share must be within 0..0.9 (room for the 4 KiB pages)")
    if args.baseline is not None and not (args.baseline / "mmcore").is_dir():
        ap.error(f"--baseline {args.baseline}: not a checkout of the project")
    trees = {"this": HERE} if args.baseline is None else {
        "baseline": args.baseline.resolve(), "this": HERE}
    for gib in args.gib:
        for name, tree in trees.items():
            r = run_tree(tree, gib, args.thp_share)
            print(f"{gib:4d} GiB {name:8s} built in {r['build_s']:.1f} s: RSS "
                  f"{r['built']:,.0f} MiB (bare {r['bare']:,.0f}); {args.thp_share:.0%} THP + "
                  f"1 GiB 4K anon + 1 GiB page cache in {r['populate_s']:.1f} s: RSS "
                  f"{r['populated']:,.0f} MiB, peak {r['peak']:,.0f} MiB, "
                  f"{int(r['page_table_pages'])} page-table pages", flush=True)


if __name__ == "__main__":
    main()
