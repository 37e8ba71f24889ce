"""Interpreter speed: instructions per second on loop-heavy programs (median of runs).

Run by hand: ``PYTHONPATH=. python benchmarks/bench_interp.py [--runs N]``.
Programs: counting primes below 5,000 by trial division (ALU and jumps), a
byte-sum over a 4 KiB input buffer (loads), a stack fill-and-read loop
(stores and loads), array-map lookups through the helper (calls), and the
cost of one ``run`` of a trivial program (the per-event overhead a host pays).
Each program also runs as a bound call (``bind(mem)()``: the program
translated into one Python function, what the MM hooks call), at the
reference run's instruction count, and the trivial program's bound call is
timed too.
Rates are per second of this process's CPU time, so that other load on the
machine disturbs them less.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bpfvm.asm.assembler import assemble
from bpfvm.interp.interpreter import Interpreter
from bpfvm.stdhelpers import standard_helpers

PRIMES = """
    mov %r0, 0
    mov %r1, 2
outer:
    mov %r2, 2
inner:
    mov %r3, %r2
    mul %r3, %r2
    jgt %r3, %r1, prime
    mov %r4, %r1
    mod %r4, %r2
    jeq %r4, 0, next
    add %r2, 1
    ja inner
prime:
    add %r0, 1
next:
    add %r1, 1
    jlt %r1, 5000, outer
    exit
"""

BYTE_SUM = """
    mov %r0, 0
    mov %r3, %r1
    add %r3, %r2
loop:
    jge %r1, %r3, done
    ldxb %r4, [%r1]
    add %r0, %r4
    add %r1, 1
    ja loop
done:
    exit
"""

STACK = """
    mov %r0, 0
    mov %r6, 0
round:
    mov %r1, %r10
    add %r1, -512
fill:
    stxdw [%r1], %r6
    ldxdw %r2, [%r1]
    add %r0, %r2
    add %r1, 8
    jlt %r1, %r10, fill
    add %r6, 1
    jlt %r6, 300, round
    exit
"""

MAP_LOOKUPS = """
.map counts array key=4 value=8 entries=64
    mov %r6, 0
    mov %r7, 0
loop:
    mov %r1, %r6
    and %r1, 63
    stxw [%r10-4], %r1
    lddw %r1, map[counts]
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, skip
    ldxdw %r1, [%r0]
    add %r1, 1
    stxdw [%r0], %r1
    add %r7, 1
skip:
    add %r6, 1
    jlt %r6, 20000, loop
    mov %r0, %r7
    exit
"""

BENCHES = (("primes < 5000", PRIMES, 0), ("byte sum, 4 KiB", BYTE_SUM, 4096),
           ("stack fill", STACK, 0), ("array map lookups", MAP_LOOKUPS, 0))


def measure(text: str, mem_size: int, runs: int) -> tuple[float, float, int, int]:
    """(reference insns/s, bound-call insns/s, instructions, r0)."""
    vm = Interpreter(assemble(text, "bench.s", syntax="conformance"), standard_helpers(),
                     budget=100_000_000)
    mem = bytearray(i & 0xFF for i in range(mem_size))
    bound = vm.bind(mem)
    rates, bound_rates = [], []
    r0 = 0
    for _ in range(runs):
        start = time.process_time()
        r0 = vm.run(mem)
        rates.append(vm.steps / (time.process_time() - start))
        start = time.process_time()
        r0_bound = bound()
        bound_rates.append(vm.steps / (time.process_time() - start))
        assert r0_bound == r0, (r0_bound, r0)
    return statistics.median(rates), statistics.median(bound_rates), vm.steps, r0


def call_overhead(runs: int, calls: int = 20_000, bound: bool = False) -> float:
    """Median microseconds per ``run`` (or bound call) of a two-instruction program."""
    vm = Interpreter(assemble("mov %r0, 1\nexit\n", "trivial.s", syntax="conformance"),
                     standard_helpers())
    mem = bytearray(64)
    call = vm.bind(mem) if bound else (lambda: vm.run(mem))
    times = []
    for _ in range(runs):
        start = time.process_time()
        for _ in range(calls):
            call()
        times.append((time.process_time() - start) / calls * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'program':<20} {'insns/run':>10} {'median insns/s':>15} {'bound call':>12}   r0")
    for name, text, mem_size in BENCHES:
        rate, bound_rate, steps, r0 = measure(text, mem_size, args.runs)
        print(f"{name:<20} {steps:>10,} {rate:>15,.0f} {bound_rate:>12,.0f}   {r0}")
    print(f"one run of a trivial program: {call_overhead(args.runs):.2f} us (median)")
    print(f"one bound call of it (translated): "
          f"{call_overhead(args.runs, bound=True):.2f} us (median)")


if __name__ == "__main__":
    main()
