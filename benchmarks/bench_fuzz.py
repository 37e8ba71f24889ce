"""Fuzzer throughput, and its power against verifier mutants (run by hand).

``PYTHONPATH=. python benchmarks/bench_fuzz.py [--rounds N] [--cases M]``
prints, per core (one process, CPU time, after 20 untimed warm-up cases and
the JIT's one-time set-up),
the median over rounds and the rate over all rounds of: programs generated
+ verified + executed per second (the campaign's loop, oracles included),
and the share of time each phase takes.

``PYTHONPATH=. python benchmarks/bench_fuzz.py --mutants [--seconds 60]``
runs the mutation-testing table of ``tests/test_fuzz_mutants.py`` with the
full time per mutant and prints each mutant's fate and the kill rate.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from bpfvm.fuzz.builder import ins
from bpfvm.fuzz.campaign import Config, case_at
from bpfvm.fuzz.mutate import tables
from bpfvm.fuzz.oracles import Oracles
from bpfvm.jit.engine import Jit
from bpfvm.program import Program


def throughput(rounds: int, cases: int, seed: int) -> None:
    oracles = Oracles()
    tabs = tables()
    cfg = Config(seed=seed)
    rates, shares = [], []
    for warm in range(10**6, 10**6 + 20):  # imports and first-use caches, not timed
        case = case_at(cfg, warm, [], tabs)
        verdict, _ = oracles.verify(case)
        if verdict is not None and verdict.accepted:
            oracles.execute(case, verdict, random.Random(warm))
    # the JIT's process-wide set-up (long runs are finished on the checked JIT)
    Jit(Program([ins("mov64_k", 0, imm=0), ins("exit")]), oracles.helpers, checked=True).run()
    index = 0
    for _ in range(rounds):
        t_gen = t_ver = t_run = 0.0
        accepted = 0
        start = time.process_time()
        for _ in range(cases):
            t0 = time.process_time()
            case = case_at(cfg, index, [], tabs)
            t1 = time.process_time()
            verdict, finding = oracles.verify(case)  # which checks the bytecode first
            t2 = time.process_time()
            if verdict is not None and verdict.accepted:
                accepted += 1
                oracles.execute(case, verdict, random.Random(index))
            t3 = time.process_time()
            t_gen, t_ver, t_run = t_gen + t1 - t0, t_ver + t2 - t1, t_run + t3 - t2
            index += 1
        total = time.process_time() - start
        rates.append(cases / total)
        shares.append((t_gen / total, t_ver / total, t_run / total, accepted / cases))
    med = statistics.median(rates)
    overall = rounds * cases / sum(cases / r for r in rates)
    gen, ver, run, acc = (statistics.median(s[i] for s in shares) for i in range(4))
    print(f"programs generated + verified + executed per second per core: {med:.0f} "
          f"(median of {rounds} rounds of {cases}; target >= 500); over all "
          f"{rounds * cases} programs {overall:.0f}")
    print(f"  time share: generate {gen:.0%}, verify {ver:.0%}, execute (oracles) {run:.0%}; "
          f"accepted {acc:.0%}")


def mutants(seconds: float, seed: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tests.bpfvm.fuzz.test_mutants as suite

    killed = 0
    for name in suite.MUTANTS:
        h = suite.hunt(name, seconds, seed)
        killed += h.report is not None
        fate = f"killed in {h.seconds:.1f} s ({h.cases} programs)" if h.report else "SURVIVED"
        print(f"{name:28} {fate:34} {h.report.finding if h.report else ''}"[:160], flush=True)
    print(f"kill rate: {killed}/{len(suite.MUTANTS)} = {killed / len(suite.MUTANTS):.0%} "
          f"({seconds:g} s per mutant, seed {seed}; target >= 90%)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mutants", action="store_true", help="run the mutation-testing table")
    p.add_argument("--seconds", type=float, default=60.0, help="per mutant (with --mutants)")
    args = p.parse_args()
    if args.mutants:
        mutants(args.seconds, args.seed)
    else:
        throughput(args.rounds, args.cases, args.seed)


if __name__ == "__main__":
    main()
