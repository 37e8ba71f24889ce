"""Start-up time of the command line against a bare interpreter (run by hand).

``python benchmarks/bench_startup.py [--runs N]`` times, in fresh processes
and alternating so that machine noise hits both sides alike, ``python -c
pass`` and a few short commands (``bpfvm verify`` of a two-instruction
program first: the figure issue 13 asks to keep within 5x), after one
untimed run of each (the lark grammar cache and the OS page cache warm).
It prints each command's median wall-clock time and its median ratio to
the bare interpreter (per round, then the median over rounds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(argv: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "small.s").write_text("r0 = 1\nexit\n")
        commands = {
            "python -c pass": [py, "-c", "pass"],
            "bpfvm verify small.s": [py, "-m", "bpfvm", "verify", "small.s"],
            "bpfvm run small.s": [py, "-m", "bpfvm", "run", "small.s"],
            "bpfvm --version": [py, "-m", "bpfvm", "--version"],
            "bpfvm hooks --json": [py, "-m", "bpfvm", "hooks", "--json"],
        }
        for argv in commands.values():  # warm caches, untimed
            _time(argv, tmp)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_time(argv, tmp))
    bare = times["python -c pass"]
    print(f"{args.runs} runs each, median wall clock; ratio: median over rounds of "
          "(command / python -c pass) in the same round")
    for name, ts in times.items():
        ratio = statistics.median(t / b for t, b in zip(ts, bare, strict=True))
        print(f"  {name:24s} {statistics.median(ts) * 1000:7.1f} ms   {ratio:5.2f}x")


if __name__ == "__main__":
    main()
