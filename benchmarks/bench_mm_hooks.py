"""Hook cost: faults per second with no program, with a verified program on
the interpreter and on the JIT; wall time of the default scenario and of
the demo comparison.  Target: default scenario <= 60 s.

    python benchmarks/bench_mm_hooks.py [RUNS]

Faults are anonymous 4 KiB faults on a two-node machine, each asking the
placement hook (programs/tier_placement.s) where its page goes, and 2 MiB
THP faults asking the huge-page hook (programs/thp_policy.s).  Prints
medians over RUNS runs (default 5).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bpfvm.asm.assembler import assemble_file  # noqa: E402
from bpfvm.load import load  # noqa: E402
from mmcore.hooks.host import MmEnv, policy_helpers  # noqa: E402
from mmcore.hooks.specs import HOOKS  # noqa: E402
from mmcore.mm import MM  # noqa: E402
from mmcore.phys.physmem import MachineSpec, NodeSpec  # noqa: E402
from mmcore.scenario.runner import compare_scenario, run_scenario  # noqa: E402

PAGES_4K = 20_000
PAGES_2M = 200  # per process, under thp_policy.s budget of 256: every fault gets 2 MiB
PROCS = {"none": 1, "thp": 5}  # 2 MiB faults are spread over processes to time enough
CASES = (("none", "placement", "tier_placement.s", PAGES_4K, 4096),
         ("thp", "hugepage", "thp_policy.s", PAGES_2M, 2 << 20))


def faults_per_second(huge: str, hook: str, program: str, n: int, step: int,
                      engine: str | None) -> float:
    mm = MM(MachineSpec((NodeSpec(1 << 20), NodeSpec(1 << 20))))
    if engine is not None:
        helpers = policy_helpers()
        prog = assemble_file(ROOT / "programs" / program, helpers=helpers)
        eng = load(prog, engine=engine, helpers=helpers, hook=HOOKS[hook], env=MmEnv(mm)).engine
        mm.hooks.attach(hook, eng)
    procs = [mm.spawn() for _ in range(PROCS[huge])]
    areas = [(p.fault, p.mmap(n * step, huge, hint=1000)) for p in procs]
    t = time.perf_counter()
    for fault, va in areas:
        for i in range(n):
            fault(va + i * step)
    elapsed = time.perf_counter() - t
    assert mm.hooks.stats()[hook]["fallbacks"] == 0
    return n * len(areas) / elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for huge, hook, program, n, step in CASES:
        size = "4 KiB" if huge == "none" else "2 MiB"
        for engine in (None, "interp", "jit"):
            rates = [faults_per_second(huge, hook, program, n, step, engine) for _ in range(runs)]
            label = f"{size} faults/s, {hook} hook: " + (f"{program} on {engine}" if engine
                                                          else "no program")
            print(f"{label:58s} median {statistics.median(rates):>10,.0f}")
    for name, fn in (("default scenario (programs attached)", lambda: run_scenario()),
                     ("default scenario, programs detached", lambda: run_scenario(attach=False)),
                     ("demo comparison (both sides)", lambda: compare_scenario())):
        times = []
        for _ in range(max(1, runs // 2)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        print(f"{name:58s} median {statistics.median(times):>9.1f} s")


if __name__ == "__main__":
    main()
