"""Hook cost: a fault-heavy run with a placement program that repeats the
built-in decision (benchmarks/placement_builtin.s), against the same run
with no program.  Both simulate the same thing (the test of this file's
program checks that), so the ratio is what the hook costs.  Targets
(issue 18): <= 1.10x on the JIT, <= 1.5x on the interpreter.

    python benchmarks/bench_hook_cost.py [--faults N] [--runs R] [--against TREE]
    python benchmarks/bench_hook_cost.py --profile interp|jit [--faults N]

Each measurement is a fresh process: N anonymous 4 KiB faults on one
8 GiB node (default N = 200,000; the issue's figures used 800,000), timed
around the fault loop only, in CPU time of the process (``time.process_time``:
on a shared, loaded machine wall-clock time mostly measures the neighbours).
Configurations run interleaved, R rounds (default 5), and the medians are
printed with their ratio to "no program".
``--against TREE`` also measures another checkout (e.g. an unpacked
``git archive`` of the commit before a change) in the same rounds, so old
and new code share the machine's load; its rows are labelled with the tree.
``--profile`` runs one configuration under cProfile in this process and
prints the functions by internal time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROGRAM = HERE / "placement_builtin.s"
CONFIGS = ("none", "interp", "jit")


def fault_run(engine: str, n: int) -> tuple[float, int]:
    """(seconds for ``n`` faults, placement calls) with ``engine`` (or "none")."""
    from bpfvm.asm.assembler import assemble_file
    from bpfvm.load import load
    from mmcore.hooks.host import MmEnv, policy_helpers
    from mmcore.hooks.specs import HOOKS
    from mmcore.mm import MM
    from mmcore.phys.physmem import MachineSpec, NodeSpec

    mm = MM(MachineSpec((NodeSpec(2 << 20),)))  # 8 GiB
    if engine != "none":
        helpers = policy_helpers()
        prog = assemble_file(PROGRAM, helpers=helpers)
        eng = load(prog, engine=engine, helpers=helpers, hook=HOOKS["placement"],
                   env=MmEnv(mm)).engine
        mm.hooks.attach("placement", eng)
    p = mm.spawn()
    va = p.mmap(n * 4096, "none")
    fault = p.fault
    t = time.process_time()
    for i in range(n):
        fault(va + i * 4096)
    elapsed = time.process_time() - t
    st = mm.hooks.stats()["placement"]
    assert st["fallbacks"] == 0 and mm.stats.faults == n, st
    return elapsed, st["calls"]


def measure(tree: Path, engine: str, n: int) -> float:
    """CPU seconds for ``n`` faults, in a fresh interpreter importing ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    code = (f"import sys; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(HERE)!r})\n"
            f"import bench_hook_cost as b; print(b.fault_run({engine!r}, {n})[0])")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True, cwd=tree).stdout
    return float(out.split()[-1])


def profile(engine: str, n: int) -> None:
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT))
    prof = cProfile.Profile()
    prof.enable()
    fault_run(engine, n)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faults", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--against", type=Path, action="append", default=[])
    ap.add_argument("--profile", choices=("none", "interp", "jit"))
    args = ap.parse_args()
    if args.profile:
        profile(args.profile, args.faults)
        return
    trees = [ROOT, *[t.resolve() for t in args.against]]
    times: dict[tuple[Path, str], list[float]] = {(t, c): [] for t in trees for c in CONFIGS}
    for r in range(args.runs):
        for tree in trees:
            for cfg in CONFIGS:
                times[tree, cfg].append(measure(tree, cfg, args.faults))
        print(f"round {r + 1}/{args.runs} done", file=sys.stderr)
    print(f"{args.faults:,} 4 KiB faults, one 8 GiB node, placement hook, "
          f"CPU time, medians of {args.runs} interleaved runs")
    for tree in trees:
        base = statistics.median(times[tree, "none"])
        for cfg in CONFIGS:
            t = statistics.median(times[tree, cfg])
            label = "no program" if cfg == "none" else f"placement_builtin.s on {cfg}"
            print(f"{str(tree):28s} {label:34s} {t:7.2f} s CPU  {args.faults / t:>9,.0f} faults/s"
                  f"  {t / base:5.2f}x")


if __name__ == "__main__":
    main()
