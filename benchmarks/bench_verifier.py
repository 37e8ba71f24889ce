"""Verifier timing: programs/*.s, a 4,096-instruction straight-line program,
loop-bound scaling (10 vs 1e3 vs 1e6 iterations), and the fuzzer's programs.
Run by hand:

    PYTHONPATH=. python benchmarks/bench_verifier.py [--fuzz N]

Prints the median of several runs for each; targets: <= 50 ms per program
in programs/, <= 0.5 s for 4,096 instructions, loop bounds within 2x (and
accepted: 1e6 trips of 3 instructions are within the default limit).  The
fuzzer section verifies N generated and mutated programs (default 2,000,
seeds 1 and 2) as the fuzzer's oracle does and prints the mean and median
over programs of each program's best time of 5 runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bpfvm.asm.assembler import assemble
from bpfvm.program import Program
from mmcore.hooks.helpers import policy_helpers
from verifier import verify

ROOT = Path(__file__).resolve().parents[1]
HELPERS = policy_helpers()  # the standard helpers and the MM ones policies call
REGION = 1 << 20


def median_time(fn: Callable[[], object], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def straight_line(n: int) -> Program:
    lines = ["r0 = 0", "r3 = 0"]
    body = ["r3 += 3", "r3 &= 0xff", "*(u64 *)(r10 - 8) = r3", "r4 = *(u64 *)(r10 - 8)",
            "r0 += r4", "r0 ^= 5", "if r0 > 1000 goto +1", "r0 += 1"]
    while len(lines) < n - 2:
        lines.append(body[len(lines) % len(body)])
    lines += ["r0 &= 1", "exit"]
    return assemble("\n".join(lines) + "\n", "straight.s")


def counted_loop(bound: int) -> Program:
    """``for i < bound``: three instructions per trip, so 1e6 trips stay
    within the default limit of 10,000,000 executed instructions."""
    text = f"""
    r0 = 0
    r1 = 0
    loop:
    r0 += r1
    r1 += 1
    if r1 < {bound} goto loop
    exit
    """
    return assemble(text, f"loop{bound}.s")


def policy_programs() -> list[tuple[str, Program, object, dict[str, int]]]:
    """Every program in programs/: one per file, or one per ``.hook`` section
    of a page-table file (set for a region of REGION bytes)."""
    try:
        from mmcore.hooks.specs import HOOKS
    except ImportError:
        HOOKS = {}
    out = []
    for path in sorted((ROOT / "programs").glob("*.s")):
        text = path.read_text()
        if text.count("\n.hook ") > 1:
            from bpfvm.asm.sections import split_sections
            from mmcore.pagetables.loading import check_sections, with_region_size

            sections = check_sections(split_sections(text, str(path), helpers=HELPERS),
                                      str(path))
            progs = [(f"{path.name}:{hook}", with_region_size(p, REGION))
                     for hook, p in sorted(sections.items())]
        else:
            progs = [(path.name, assemble(text, str(path), helpers=HELPERS))]
        for name, prog in progs:
            hook = HOOKS.get(prog.hook) if prog.hook else None
            objects = {name: REGION for name in (hook.objects if hook else {})}
            out.append((name, prog, hook, objects))
    return out


def fuzz_programs(n: int) -> list[tuple[Program, object, dict]]:
    """``n`` of the fuzzer's cases (generated and mutated), half from seed 1,
    half from seed 2, with the arguments its oracle verifies them with."""
    from bpfvm.fuzz.campaign import Config, case_at
    from bpfvm.fuzz.mutate import tables

    tabs = tables()
    out = []
    for i in range(n):
        case = case_at(Config(seed=1 + i % 2), i // 2, [], tabs)
        t = case.target
        out.append((case.program, t.hook, {"ctx_size": t.ctx_size, "objects":
                                           t.object_sizes() if t.objects else None}))
    return out


def fuzz_timing(n: int, runs: int = 5) -> None:
    from bpfvm.stdhelpers import standard_helpers

    helpers = standard_helpers()
    cases = fuzz_programs(n)
    best = [float("inf")] * len(cases)
    accepted = 0
    for r in range(runs):
        for i, (prog, hook, kw) in enumerate(cases):
            t = time.perf_counter()
            verdict = verify(prog, hook, helpers=helpers, **kw)
            best[i] = min(best[i], time.perf_counter() - t)
            accepted += r == 0 and verdict.accepted
    print(f"fuzzer programs ({n}, {accepted} accepted): verify() mean "
          f"{statistics.fmean(best) * 1e6:.0f} us, median {statistics.median(best) * 1e6:.0f} us "
          f"per program (best of {runs} runs each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz", type=int, default=2000, metavar="N",
                        help="fuzzer programs to time (0: skip)")
    args = parser.parse_args()
    print("program                        verdict    median")
    for name, prog, hook, objects in policy_programs():
        verdict = verify(prog, hook, ctx_size=64, helpers=HELPERS, objects=objects)
        t = median_time(lambda p=prog, h=hook, o=objects: verify(p, h, ctx_size=64,
                                                                 helpers=HELPERS, objects=o))
        state = "accepted" if verdict.accepted else "REJECTED"
        print(f"{name:30s} {state:10s} {t * 1000:7.1f} ms  ({len(prog.insns)} slots, "
              f"{verdict.stats['visits']} visits)")
    prog = straight_line(4096)
    verdict = verify(prog, ctx_size=0, helpers=HELPERS)
    t = median_time(lambda: verify(prog, ctx_size=0, helpers=HELPERS), runs=5)
    print(f"straight-line 4096 insns       {'accepted' if verdict.accepted else 'REJECTED':10s} "
          f"{t * 1000:7.1f} ms")
    base = None
    for bound in (10, 1_000, 1_000_000):
        prog = counted_loop(bound)
        verdict = verify(prog, ctx_size=0, helpers=HELPERS)
        t = median_time(lambda p=prog: verify(p, ctx_size=0, helpers=HELPERS))
        base = base or t
        state = "accepted" if verdict.accepted else "REJECTED"
        print(f"loop i < {bound:<10d}           {state:10s} {t * 1000:7.1f} ms  "
              f"({t / base:.2f}x, {verdict.stats['visits']} visits, "
              f"at most {verdict.stats['max_insns']} insns per run)")
    if args.fuzz:
        fuzz_timing(args.fuzz)


if __name__ == "__main__":
    main()
