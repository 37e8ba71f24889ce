"""Cost of ``--check``: wall time of a scenario run with every invariant
checked (incrementally after each tick, in full every ``check_interval``
ticks and after the last) over the same run unchecked.  Target: <= 3x.

    python benchmarks/bench_check_cost.py [RUNS] [SCENARIO]

Runs alternate (unchecked, checked) so load drifts hit both sides; the
ratio is of the medians.  SCENARIO defaults to the built-in demo.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcore.scenario.runner import Runner, as_scenario  # noqa: E402

TARGET = 3.0


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    sc = as_scenario(sys.argv[2] if len(sys.argv) > 2 else None)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(runs):
        for check in (False, True):
            runner = Runner(sc, check=check)
            t = time.perf_counter()
            runner.run()
            times[check].append(time.perf_counter() - t)
    plain, checked = statistics.median(times[False]), statistics.median(times[True])
    c = runner.checker
    assert c is not None
    ratio = checked / plain
    print(f"{sc.name} ({sc.duration} ticks, {len(runner.mm.frames.state):,} frames): "
          f"unchecked {plain:.1f} s, checked {checked:.1f} s (median of {runs}); "
          f"ratio {ratio:.2f}x (target <= {TARGET:g}x); {c.full_checks} full and "
          f"{c.tick_checks} incremental checks, check_interval {sc.check_interval}")
    if ratio > TARGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
