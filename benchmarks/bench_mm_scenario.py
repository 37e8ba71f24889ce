"""Wall time of the built-in default scenario.  Target: <= 60 s.

    python benchmarks/bench_mm_scenario.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcore.scenario.runner import run_scenario  # noqa: E402


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = run_scenario()
        times.append(time.perf_counter() - t)
    m = r["metrics"]
    print(f"default scenario ({r['duration']} ticks, {m['faults']:,} faults): "
          f"median wall {statistics.median(times):.1f} s over {runs} runs")  # fmt: skip


if __name__ == "__main__":
    main()
