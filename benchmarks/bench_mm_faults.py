"""Anonymous faults per second (4 KiB and THP), with no hook engine and with
a trivial Python engine attached to the huge-page hook (a stand-in until a
JIT-compiled program can be attached).

    python benchmarks/bench_mm_faults.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcore.mm import MM  # noqa: E402
from mmcore.phys.physmem import MachineSpec, NodeSpec  # noqa: E402

RUNS = 5
PAGES = 50_000


class Largest:
    def run(self, ctx: bytearray) -> int:
        return 1


def faults_per_second(huge: str, engine: object | None) -> float:
    mm = MM(MachineSpec((NodeSpec(1 << 19, 1 << 18),)))
    if engine is not None:
        mm.hooks.attach("mm_hugepage", engine)  # type: ignore[arg-type]
    p = mm.spawn()
    step = 4096 if huge == "none" else 2 << 20
    n = PAGES if huge == "none" else 900
    va = p.mmap(n * step, huge)
    fault = p.fault
    t = time.perf_counter()
    for i in range(n):
        fault(va + i * step)
    return n / (time.perf_counter() - t)


def main() -> None:
    for huge, engine, label in (
        ("none", None, "4 KiB faults/s"),
        ("thp", None, "2 MiB faults/s, built-in policy"),
        ("thp", Largest(), "2 MiB faults/s, Python engine on mm_hugepage"),
    ):
        runs = [faults_per_second(huge, engine) for _ in range(RUNS)]
        print(f"{label:48s} median {statistics.median(runs):,.0f}")


if __name__ == "__main__":
    main()
