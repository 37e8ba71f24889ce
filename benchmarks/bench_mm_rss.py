"""Resident memory of a 64 GiB simulated machine (16 Mi frames), after
construction and after populating a few GiB.  Target: <= 1 GiB RSS.

    python benchmarks/bench_mm_rss.py
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcore.mm import MM  # noqa: E402
from mmcore.phys.physmem import MachineSpec, NodeSpec  # noqa: E402

GIB_PAGES = 1 << 18


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    base = rss_mib()
    t = time.perf_counter()
    node = NodeSpec(32 * GIB_PAGES, 16 * GIB_PAGES)
    mm = MM(MachineSpec((node, node)))
    built = time.perf_counter() - t
    print(f"64 GiB machine built in {built:.2f} s, RSS {rss_mib():,.0f} MiB (bare {base:,.0f})")
    p = mm.spawn()
    va = p.mmap(4 << 30, "thp")
    for off in range(0, 4 << 30, 2 << 20):
        p.fault(va + off)
    q = mm.spawn(home_node=1)
    vb = q.mmap(1 << 30, "none")
    for off in range(0, 1 << 30, 4096):
        q.fault(vb + off)
    f = mm.new_file(GIB_PAGES)
    for i in range(GIB_PAGES):
        f.read(i)
    m = mm.metrics()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"after 4 GiB THP + 1 GiB 4K anon + 1 GiB page cache: RSS {rss_mib():,.0f} MiB, "
          f"{m['page_table_pages']} page-table pages, peak {peak:,.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
