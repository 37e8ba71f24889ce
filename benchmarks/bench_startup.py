"""Start-up time of the command line against a bare interpreter (run by hand).

``python benchmarks/bench_startup.py [--runs N]`` times, in fresh processes
and alternating so that machine noise hits both sides alike, ``python -c
pass`` and a few short commands (``bpfvm verify`` of a two-instruction
program first: the figure issue 13 asks to keep within 5x), after one
untimed run of each (the lark grammar cache and the OS page cache warm).
It prints each command's median wall-clock and CPU (user + system) time
and their median ratios to the bare interpreter (per round, then the
median over rounds); on a busy machine the CPU ratio is the steadier one.
The children run with bytecode caching on, as an installed package does.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """The children's environment: this checkout first on the path, and
    bytecode caching on (as for an installed package, whose .pyc files pip
    writes; the untimed first run writes them here)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _time(argv: list[str], cwd: str) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False, env=_env())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


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
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_time(argv, tmp))
    bare = times["python -c pass"]
    print(f"{args.runs} runs each; wall clock and CPU time (user + system), medians; "
          "ratio: median over rounds of (command / python -c pass) in the same round")
    print(f"  {'':24s} {'wall':>9s} {'ratio':>6s}   {'cpu':>9s} {'ratio':>6s}")
    for name, ts in times.items():
        cols = []
        for k in (0, 1):
            ratio = statistics.median(t[k] / b[k] for t, b in zip(ts, bare, strict=True))
            cols.append(f"{statistics.median(t[k] for t in ts) * 1000:6.1f} ms {ratio:5.2f}x")
        print(f"  {name:24s} {cols[0]}   {cols[1]}")


if __name__ == "__main__":
    main()
