"""Order-0 alloc+free pairs per second through the page allocator's public
path (zonelist, watermark check, pcp list).  Target: >= 1,000,000/s.

    python benchmarks/bench_mm_alloc.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcore.constants import MT  # noqa: E402
from mmcore.phys.page_alloc import PageAllocator  # noqa: E402
from mmcore.phys.physmem import MachineSpec, NodeSpec, PhysMem  # noqa: E402

N, RUNS = 1_000_000, 5


def pairs_per_second(pa: PageAllocator) -> float:
    alloc, free = pa.alloc, pa.free
    mt = int(MT.MOVABLE)
    t = time.perf_counter()
    for _ in range(N):
        free(alloc(0, mt, 5))
    return N / (time.perf_counter() - t)


def batch_pairs_per_second(pa: PageAllocator, depth: int = 1000) -> float:
    """Alloc ``depth`` pages, then free them all: exercises pcp refill/drain."""
    alloc, free = pa.alloc, pa.free
    mt = int(MT.MOVABLE)
    rounds = N // depth
    t = time.perf_counter()
    for _ in range(rounds):
        pages = [alloc(0, mt, 5) for _ in range(depth)]
        for p in pages:
            free(p)
    return rounds * depth / (time.perf_counter() - t)


def main() -> None:
    pa = PageAllocator(PhysMem(MachineSpec((NodeSpec(1 << 20, 1 << 19), NodeSpec(1 << 20)))))
    hot = [pairs_per_second(pa) for _ in range(RUNS)]
    batch = [batch_pairs_per_second(pa) for _ in range(RUNS)]
    print(f"order-0 alloc+free pairs/s (hot pcp):       median {statistics.median(hot):,.0f}")
    print(f"order-0 alloc+free pairs/s (1000 deep):     median {statistics.median(batch):,.0f}")


if __name__ == "__main__":
    main()
