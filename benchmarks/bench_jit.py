"""JIT benchmarks: JIT vs interpreter vs gcc -O2, compile time, per-call overhead.

Run by hand from the repository root:

    python benchmarks/bench_jit.py [--quick]

Four programs (prime counting, a hashed page-table probe, a copy loop over a
map value, a branchy placement decision) run on the interpreter, on the JIT
and as the same algorithm in C (``benchmarks/c/jit_programs.c``, compiled
now with ``gcc -O2`` into a shared library).  JIT and C code are timed the
same way: one call of the C function ``bench_loop`` (same library) calls
the program's native entry point ``iters`` times through a function pointer
and sums the results, so both pay the same indirect-call cost and no Python
overhead; the sums must agree, which also checks the JIT's results.  JIT
and C loops are timed in alternation (``ROUNDS`` each) so that load from
other processes hits both alike.  The
interpreter is timed per ``run()`` from Python.  Every figure is the median
of several repetitions.  Also printed: compile time by program size (64,
512 and 4096 instructions, cache miss and cache hit) and the cost of one
call of a trivial program from Python, next to the ctypes floor.
"""

from __future__ import annotations

import argparse
import ctypes
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bpfvm.asm.assembler import assemble  # noqa: E402
from bpfvm.interp.interpreter import Interpreter  # noqa: E402
from bpfvm.isa.insn import Insn  # noqa: E402
from bpfvm.jit.compile import JitCache  # noqa: E402
from bpfvm.jit.engine import Jit  # noqa: E402
from bpfvm.maps import make_maps  # noqa: E402
from bpfvm.program import Program  # noqa: E402
from bpfvm.stdhelpers import standard_helpers  # noqa: E402

C_SOURCE = Path(__file__).parent / "c" / "jit_programs.c"
REPEAT = 7
ROUNDS = 15  # alternating JIT / C timings per program

PRIMES = """
    r6 = *(u64 *)(r1 + 0)      # n_max
    if r6 <= 1000 goto ok
    r6 = 1000
ok:
    r0 = 0                     # count
    r7 = 2                     # n
outer:
    if r7 >= r6 goto done
    r8 = 2                     # d
inner:
    if r8 >= r7 goto prime
    r9 = r8
    r9 *= r8
    if r9 > r7 goto prime
    r2 = r7
    r2 %= r8
    if r2 == 0 goto next
    r8 += 1
    goto inner
prime:
    r0 += 1
next:
    r7 += 1
    goto outer
done:
    exit
"""

PT_PROBE = """
.map pt array key=4 value=65536 entries=1
    r6 = *(u64 *)(r1 + 0)      # first vpn
    r7 = *(u64 *)(r1 + 8)      # lookups
    if r7 <= 1000 goto go
    r7 = 1000
go:
    r9 = map_value[pt] ll      # 4096 tags (vpn + 1), then 4096 values
    r0 = 0
    r8 = 0
loop:
    if r8 >= r7 goto done
    r2 = r8
    r2 *= 7
    r2 += r6                   # vpn
    r3 = r2
    r4 = 0x9E3779B97F4A7C15 ll
    r3 *= r4
    r3 >>= 52                  # home slot
    r2 += 1                    # tag
    r1 = 0                     # probes
probe:
    if r1 >= 64 goto miss
    r4 = r3
    r4 <<= 3
    r4 += r9
    r5 = *(u64 *)(r4 + 0)
    if r5 == r2 goto hit
    if r5 == 0 goto miss
    r3 += 1
    r3 &= 4095
    r1 += 1
    goto probe
hit:
    r4 += 16384                # the values are 32768 bytes after the tags
    r5 = *(u64 *)(r4 + 16384)
    r0 += r5
miss:
    r8 += 1
    goto loop
done:
    exit
"""

COPY_VALUE = """
.map src array key=4 value=4096 entries=1
.map dst array key=4 value=4096 entries=1
    r2 = map_value[src] ll
    r3 = map_value[dst] ll
    r4 = 0
loop:
    r5 = r2
    r5 += r4
    r6 = *(u64 *)(r5 + 0)
    r5 = r3
    r5 += r4
    *(u64 *)(r5 + 0) = r6
    r4 += 8
    if r4 < 4096 goto loop
    r0 = 0
    exit
"""

POLICY = """
.hook placement
    r2 = *(u32 *)(r1 + 12)     # home_node
    r2 &= 1
    r3 = *(u64 *)(r1 + 24)     # free_node0
    r4 = *(u64 *)(r1 + 32)     # free_node1
    r5 = r3                    # free pages of the home node
    if r2 == 0 goto have_home
    r5 = r4
have_home:
    r6 = r2
    r6 ^= 1                    # the other node
    r0 = r2                    # page tables stay local
    r7 = *(u32 *)(r1 + 4)      # source
    if r7 == 5 goto out
    r8 = *(u32 *)(r1 + 0)      # order
    if r8 < 9 goto small
    r0 = 0                     # huge: wherever more is free
    if r4 <= r3 goto out
    r0 = 1
    goto out
small:
    r9 = *(u32 *)(r1 + 20)     # hint
    if r9 <= 700 goto not_hot
    r9 = 1
    r9 <<= r8
    r9 += 1024
    r0 = r2                    # hot: home if it has room
    if r5 >= r9 goto out
    r0 = r6
    goto out
not_hot:
    r0 = 1                     # cold: the far tier
    if r9 >= 100 goto not_cold
    r9 = *(u32 *)(r1 + 16)     # nr_nodes
    if r9 > 1 goto out
not_cold:
    if r7 != 1 goto other_sources
    r0 = 0                     # page cache: node 0 unless it is short
    if r3 >= 4096 goto out
    r0 = 1
    goto out
other_sources:
    r0 = r2
    if r5 >= 2048 goto out
    r0 = r6
out:
    exit
"""


def median_ns(fn, number: int) -> float:
    """Median over REPEAT runs of the time of one call of ``fn``, in ns."""
    times = timeit.repeat(fn, number=number, repeat=REPEAT)
    return statistics.median(times) / number * 1e9


def build_c(tmp: Path) -> ctypes.CDLL:
    gcc = shutil.which("gcc")
    if gcc is None:
        sys.exit("gcc not found: the C comparison needs it")
    lib = tmp / "jit_programs.so"
    subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(C_SOURCE)], check=True)
    return ctypes.CDLL(str(lib))


class Case:
    """A benchmark program, its contexts, and its engines (maps shared by all)."""

    def __init__(self, name: str, text: str, contexts: Callable[[Case], list[bytes]],
                 iters: int, interp_runs: int,
                 setup: Callable[[Case], None] | None = None) -> None:
        self.name = name
        self.program = assemble(text, f"{name}.s")
        self.maps = make_maps(self.program.maps)
        helpers = standard_helpers()
        self.jit = Jit(self.program, helpers, maps=self.maps)
        self.interp = Interpreter(self.program, helpers, maps=self.maps, budget=10**9)
        if setup:
            setup(self)
        self.contexts = [bytearray(c) for c in contexts(self)]
        self.ctx_size = len(self.contexts[0])
        self.packed = (ctypes.c_uint8 * (self.ctx_size * len(self.contexts))).from_buffer_copy(
            b"".join(self.contexts))
        self.iters = iters
        self.interp_runs = interp_runs

    def verdict(self) -> str:
        try:
            from mmcore.hooks.specs import HOOKS
            from verifier import verify
        except ImportError as exc:
            return f"verifier unavailable ({exc})"
        hook = HOOKS.get(self.program.hook) if self.program.hook else None
        v = verify(self.program, hook, ctx_size=None if hook else self.ctx_size,
                   helpers=standard_helpers())
        if v.accepted:
            return "accepted"
        first = str(v.diagnostics[0]).splitlines()[0] if v.diagnostics else "rejected"
        return f"rejected: {first}"

    def native(self, lib: ctypes.CDLL, entries: list[tuple[int, int | None]]
               ) -> list[tuple[float, int]]:
        """(ns per run, sum of results) for each (entry address, state) given.

        The entries are timed in alternation, ROUNDS times, so that load from
        other processes affects them alike; each figure is the median."""
        loop = lib.bench_loop
        loop.restype = ctypes.c_uint64
        loop.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_uint64] * 3
        calls = [(address, state, ctypes.addressof(self.packed), self.ctx_size,
                  len(self.contexts), self.iters) for address, state in entries]
        sums = [loop(*args) for args in calls]  # also warms up
        times: list[list[float]] = [[] for _ in calls]
        for _ in range(ROUNDS):
            for args, out in zip(calls, times, strict=True):
                start = time.perf_counter()
                loop(*args)
                out.append(time.perf_counter() - start)
        return [(statistics.median(t) * 1e9 / self.iters, total)
                for t, total in zip(times, sums, strict=True)]

    def interpreted(self) -> tuple[float, int]:
        total = 0
        times = []
        for i in range(self.interp_runs):
            ctx = self.contexts[i % len(self.contexts)]
            t = time.perf_counter()
            total += self.interp.run(bytearray(ctx))
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e9, total


def pt_setup(case: Case) -> None:
    table = case.maps[0]
    rng = random.Random(1)
    tags = [0] * 4096
    values = [0] * 4096
    for i in range(3000):
        vpn = 0x10000 + i * 7
        slot = (vpn * 0x9E3779B97F4A7C15 & ((1 << 64) - 1)) >> 52
        while tags[slot]:
            slot = (slot + 1) & 4095
        tags[slot], values[slot] = vpn + 1, rng.getrandbits(40)
    table.update(b"\0\0\0\0", struct.pack("<4096Q", *tags) + struct.pack("<4096Q", *values))


def copy_setup(case: Case) -> None:
    case.maps[0].update(b"\0\0\0\0", random.Random(2).randbytes(4096))


def pt_contexts(case: Case) -> list[bytes]:
    table = case.jit.map_value_addr(case.maps[0], 0)  # for the C version
    return [struct.pack("<QQQ", 0x10000 + j * 70, 1000, table) for j in range(8)]


def copy_contexts(case: Case) -> list[bytes]:
    return [struct.pack("<QQ", *(case.jit.map_value_addr(m, 0) for m in case.maps))]


def policy_contexts(case: Case) -> list[bytes]:
    rng = random.Random(3)
    return [struct.pack("<6I4Q", rng.choice([0, 0, 0, 9, 18]), rng.randrange(6),
                        rng.randrange(1000), rng.randrange(2), 2, rng.randrange(1001),
                        rng.randrange(8192), rng.randrange(8192), 0, 0)
            for _ in range(64)]


def cases(quick: bool) -> list[Case]:
    q = 10 if quick else 1
    return [
        Case("primes", PRIMES, lambda c: [struct.pack("<Q", 1000)], 400 // q, 5 // q or 1),
        Case("pt_probe", PT_PROBE, pt_contexts, 2000 // q, 20 // q, pt_setup),
        Case("copy_value", COPY_VALUE, copy_contexts, 200_000 // q, 20 // q, copy_setup),
        Case("policy", POLICY, policy_contexts, 5_000_000 // q, 20_000 // q),
    ]


def compare(lib: ctypes.CDLL, quick: bool) -> None:
    print("\n## JIT vs interpreter vs gcc -O2 (ns per program run, medians)\n")
    print(f"{'program':<11} {'verifier':<10} {'interp':>12} {'jit':>10} {'gcc -O2':>10} "
          f"{'jit/gcc':>8} {'interp/jit':>11}")
    for case in cases(quick):
        c_fn = ctypes.cast(getattr(lib, case.name), ctypes.c_void_p).value
        (jit_ns, jit_sum), (c_ns, c_sum) = case.native(
            lib, [(case.jit.entry_address, case.jit.state_address), (c_fn, None)])
        if jit_sum != c_sum:
            sys.exit(f"{case.name}: JIT sum {jit_sum} != C sum {c_sum}")
        interp_ns, _ = case.interpreted()
        verdict = case.verdict()
        print(f"{case.name:<11} {verdict.split(':')[0]:<10} {interp_ns:>12,.0f} {jit_ns:>10,.1f} "
              f"{c_ns:>10,.1f} {jit_ns / c_ns:>8.2f} {interp_ns / jit_ns:>11,.0f}")
        if verdict != "accepted":
            print(f"    ({verdict})")


def sized_program(n: int, seed: int) -> Program:
    """A program of exactly ``n`` slots: ALU work, stack traffic, forward branches."""
    rng = random.Random(seed)
    code: list[Insn] = [Insn(0xB7, r, imm=rng.randrange(1000)) for r in range(10)]
    while len(code) < n - 1:
        d, s = rng.randrange(10), rng.randrange(10)
        choice = rng.randrange(6)
        if choice == 0:
            code.append(Insn(0x7B, 10, d, -8 * rng.randrange(1, 64)))  # stxdw [r10-k], rd
        elif choice == 1:
            code.append(Insn(0x79, d, 10, -8 * rng.randrange(1, 64)))  # ldxdw rd, [r10-k]
        elif choice == 2 and len(code) < n - 3:
            code.append(Insn(0x2D, d, s, 1))  # jgt rd, rs, +1
        else:
            op = rng.choice([0x0F, 0x1F, 0x2F, 0x4F, 0x5F, 0xAF, 0x07, 0x57, 0x77, 0x67])
            code.append(Insn(op, d, s if op & 0x08 else 0, 0,
                             0 if op & 0x08 else rng.randrange(1, 31)))
    return Program(code[:n - 1] + [Insn(0x95)])


def compile_times(quick: bool) -> None:
    print("\n## Compile time by program size (ms, medians)\n")
    print(f"{'slots':>6} {'compile (miss)':>15} {'load (cache hit)':>17}")
    cache = JitCache()
    helpers = standard_helpers()
    for n in (64, 512, 4096):
        reps = 3 if (quick or n == 4096) else 5
        misses = []
        for seed in range(reps):
            program = sized_program(n, seed + 100 * n)
            t = time.perf_counter()
            Jit(program, helpers, cache=cache)
            misses.append(time.perf_counter() - t)
        hits = []
        for _ in range(REPEAT):
            t = time.perf_counter()
            Jit(program, helpers, cache=cache)
            hits.append(time.perf_counter() - t)
        print(f"{n:>6} {statistics.median(misses) * 1e3:>15.1f} "
              f"{statistics.median(hits) * 1e3:>17.3f}")


def call_overhead(lib: ctypes.CDLL) -> None:
    print("\n## One call of a trivial program from Python (ns, medians)\n")
    program = assemble("r0 = 0\nexit\n", "trivial.s")
    jit = Jit(program, standard_helpers())
    interp = Interpreter(program, standard_helpers())
    ctx = bytearray(64)
    floor0 = ctypes.PYFUNCTYPE(ctypes.c_uint64)(ctypes.cast(lib.nop0, ctypes.c_void_p).value)
    bound = jit.bind(ctx)
    entry = ctypes.PYFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64,
                              ctypes.c_uint64)(jit.entry_address)
    other = bytearray(64)  # run() would use ctx in place if it were addressable too
    state, addr = jit.state_address, jit.address_of(other)
    rows = [
        ("ctypes floor: C function, no arguments", floor0, 200_000),
        ("JIT: Jit.bind(ctx)()  (zero-argument entry)", bound, 200_000),
        ("JIT: entry_address(state, ctx, len) via ctypes", lambda: entry(state, addr, 64),
         200_000),
        ("JIT: Jit.run(ctx)", lambda: jit.run(ctx), 50_000),
        ("interpreter: Interpreter.run(ctx)", lambda: interp.run(ctx), 20_000),
        ("interpreter: Interpreter.bind(ctx)()  (translated)", interp.bind(other), 50_000),
    ]
    for label, fn, number in rows:
        print(f"{label:<50} {median_ns(fn, number):>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lib = build_c(Path(tmp))
        compare(lib, args.quick)
        compile_times(args.quick)
        call_overhead(lib)


if __name__ == "__main__":
    main()
