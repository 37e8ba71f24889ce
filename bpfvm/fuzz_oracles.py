"""The fuzzer's oracles: what must hold for a program the verifier judged.

On every well-formed program: (4) the verifier returns a verdict without
raising, within a wall-clock limit and within its analysis budget.  On
every accepted program, over several concrete inputs (context fields, map
contents, region bytes) drawn with a bias to the program's own constants
and their neighbours: (1) the bounds-checked interpreter never faults, and
its result does not depend on uninitialised stack or registers (each input
runs twice, with different garbage in the stack and in registers the
verifier must consider unreadable); (2) interpreter and JIT agree on r0,
the context, the region and the maps (sampled: compiling with llvmlite
costs more than everything else together); (3) every scalar range the
verifier claims for a register at a pc holds whenever the interpreter
reaches that pc.  Oracle (1) also holds accepted programs to the rest of
the contract the verifier vouches for: r0 within the hook's range (or a
pointer into the region where the hook returns one), read-only context
fields unchanged, and no address of the engine's memory left in r0, the
context, a map or the region (a pointer leak).

An oracle that fires returns a :class:`Finding`; this module neither
generates nor reduces programs.  The verifier's facts are read through
:func:`claims`, the one place that knows their shape.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bpfvm import isa
from bpfvm.errors import VmFault
from bpfvm.fuzz_gen import EDGE_WIDE, REGION_SIZE, Case
from bpfvm.helpers import HelperTable
from bpfvm.insn import check
from bpfvm.interp import Interpreter
from bpfvm.maps import make_maps
from bpfvm.vmenv import VmEnv

M64 = (1 << 64) - 1
RETURNED_SIZE = 8  # a returned PTE pointer must address this many bytes
STACK_SLACK = 512  # how far outside an object a leaked address may point
RUN_BUDGET = 100_000  # instructions per run; a run that needs more is retried with
LONG_BUDGET = 1_000_000  # this, or what the verifier's loop trip counts allow (capped):
MAX_BUDGET = 2_000_000
VERIFY_SECONDS = 10.0


@dataclass(frozen=True)
class Finding:
    """An oracle that fired: which, why, and the input that showed it."""

    oracle: str  # verifier-crash, verifier-timeout, fault, uninit, contract, jit, range,
    # engine-crash (an engine broke on an accepted program: its bug, not the verifier's)
    message: str
    detail: str = ""

    def signature(self) -> str:
        """What findings of one bug share (for de-duplication)."""
        words = [w for w in self.message.replace(":", " ").split()
                 if not any(c.isdigit() for c in w)]
        return f"{self.oracle}: {' '.join(words[:8])}"

    def __str__(self) -> str:
        return f"{self.oracle}: {self.message}"


@dataclass
class Outcome:
    """The verdict on one case and what the oracles said."""

    wellformed: bool
    accepted: bool = False
    finding: Finding | None = None
    jit_checked: bool = False
    runs: int = 0
    verify_seconds: float = 0.0


class _Timeout(Exception):
    pass


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`_Timeout` after ``seconds`` (main thread only; else no limit)."""
    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout
    try:
        old = signal.signal(signal.SIGALRM, on_alarm)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


Checker = Callable[[int, list[int]], str | None]


def range_checker(facts: Any) -> Checker | None:
    """``check(pc, regs) -> None | what does not hold`` for the verifier's facts.

    The message comes from ``facts.check(pc, regs)`` (r0..r10 at entry to
    pc); when the facts expose their per-pc register values (``facts.regs``)
    the common case -- every claim holds -- is decided by a table of the
    non-trivial scalar claims built once, without that call.
    """
    full = getattr(facts, "check", None)
    if not callable(full):
        return None
    table = getattr(facts, "regs", None)
    if not isinstance(table, dict):
        return full
    fast: dict[int, tuple[tuple[int, Callable[[int], bool]], ...]] = {}
    for pc, vals in table.items():
        claims = []
        for reg, v in enumerate(vals):
            num = getattr(v, "num", None)
            if getattr(getattr(v, "kind", None), "name", "") == "SCALAR" and num is not None \
                    and not num.is_unknown():
                claims.append((reg, num.contains))
        fast[pc] = tuple(claims)

    def check(pc: int, regs: list[int]) -> str | None:
        claims = fast.get(pc)
        if claims is None:
            return full(pc, regs)
        for reg, holds in claims:
            if not holds(regs[reg]):
                return full(pc, regs)
        return None
    return check


# -- concrete inputs ------------------------------------------------------------

def value_pool(case: Case) -> list[int]:
    """Values worth feeding: the program's constants, their neighbours, edges."""
    pool = {0, 1, 2, 7, 8, 63, 64, 255, 256, *EDGE_WIDE}
    for insn in case.program.insns:
        spec = insn.spec
        if spec is not None and "imm" in spec.uses and spec.kind is not isa.Kind.CALL:
            k = insn.imm
            pool.update((k, k - 1, k + 1, k + 2, -k, k + (1 << 32), k | (1 << 63)))
    for m in case.program.maps:
        pool.update((m.value_size, m.value_size - 1, m.max_entries, m.max_entries - 1))
    return sorted(v & M64 for v in pool)


@dataclass
class Input:
    ctx: bytearray
    region: bytearray | None
    entries: list[list[tuple[bytes, bytes]]]  # per map
    env_seed: int
    garbage: int

    def describe(self) -> str:
        maps = "; ".join(f"map{i}: {len(e)} entries" for i, e in enumerate(self.entries))
        return f"ctx={self.ctx.hex()}" + (f" {maps}" if maps else "")


def draw_input(case: Case, rng: random.Random, pool: list[int]) -> Input:
    t = case.target

    def value(size: int) -> int:
        v = rng.choice(pool) if rng.random() < 0.8 else rng.getrandbits(64)
        return v & ((1 << (8 * size)) - 1)

    ctx = bytearray(t.ctx_size)
    if t.hook is None:
        for off in range(0, t.ctx_size, 4):
            size = min(rng.choice((1, 4, 8)), t.ctx_size - off)
            ctx[off:off + size] = value(size).to_bytes(size, "little")
    else:
        for f in t.hook.fields:
            v = REGION_SIZE if f.name == "region_size" else value(f.size)
            ctx[f.offset:f.offset + f.size] = v.to_bytes(f.size, "little")
    region = bytearray(rng.getrandbits(8) for _ in range(64)) * (REGION_SIZE // 64) \
        if t.objects else None
    entries: list[list[tuple[bytes, bytes]]] = []
    empty = rng.random() < 0.25  # lookups fail: null checks matter
    for m in case.program.maps:
        if empty:
            entries.append([])
            continue
        keys = {rng.choice(pool) & 0xFFFFFFFF for _ in range(rng.randint(0, m.max_entries))}
        if m.kind == "array":
            keys = {k for k in keys if k < m.max_entries}
        entries.append([(k.to_bytes(m.key_size, "little"),
                         bytes(rng.getrandbits(8) for _ in range(m.value_size)))
                        for k in sorted(keys)][:m.max_entries])
    return Input(ctx, region, entries, rng.getrandbits(32), rng.getrandbits(64))


# -- the engines, instrumented --------------------------------------------------

class Probe:
    """Instruments an :class:`Interpreter`: garbage where reads are forbidden,
    and the verifier's claims checked before each instruction."""

    def __init__(self, vm: Interpreter, facts: Any) -> None:
        self.vm = vm
        self.garbage = 0
        self.fresh = False
        self.violation: str | None = None
        self.checker = range_checker(facts)
        handlers = vm._handlers
        pc = 0
        insns = vm.program.insns
        while pc < len(insns):
            spec = insns[pc].spec
            if spec is None:
                break
            if pc == 0 or self.checker is not None or spec.kind in (
                    isa.Kind.CALL, isa.Kind.CALL_LOCAL):
                handlers[pc] = self._wrap(pc, handlers[pc], spec.kind)
            pc += spec.slots

    def _fill(self, buf: bytearray, salt: int) -> None:
        if self.garbage:
            pattern = ((self.garbage ^ salt) & M64).to_bytes(8, "little")
            buf[:] = pattern * (len(buf) // 8)

    def _wrap(self, pc: int, inner: Callable[[], int], kind: isa.Kind) -> Callable[[], int]:
        vm, r, checker = self.vm, self.vm._r, self.checker
        g = self

        def step() -> int:
            if pc == 0 and g.fresh:
                g.fresh = False
                if g.garbage:
                    g._fill(vm._stacks[0], 0)
                    for reg in (0, 3, 4, 5, 6, 7, 8, 9):
                        r[reg] = (g.garbage * (reg + 1)) & M64
            if checker is not None and g.violation is None:
                g.violation = checker(pc, r)
            nxt = inner()
            if kind is isa.Kind.CALL and g.garbage:
                for reg in (1, 2, 3, 4, 5):
                    r[reg] = (g.garbage + reg) & M64
            elif kind is isa.Kind.CALL_LOCAL and g.garbage:
                g._fill(vm._stacks[len(vm._calls)], len(vm._calls))
                for reg in (6, 7, 8, 9):
                    r[reg] = (g.garbage ^ reg) & M64
            return nxt
        return step


@dataclass
class Result:
    r0: int
    ctx: bytes
    region: bytes
    maps: list[list[tuple[bytes, bytes]]] = field(default_factory=list)


class Runner:
    """An engine plus the host buffers it keeps across runs (the region)."""

    def __init__(self, engine: Any, case: Case) -> None:
        self.engine = engine
        self.case = case
        self.region = bytearray(REGION_SIZE) if case.target.objects else None
        self.region_addr = engine.address_of(self.region) if self.region is not None else 0
        self.last_r0 = 0
        self.last_ctx: bytearray | None = None

    def prepare(self, inp: Input) -> bytearray:
        engine, hook = self.engine, self.case.target.hook
        for m, entries in zip(engine.maps, inp.entries, strict=True):
            m.clear()
            for k, v in entries:
                m.update(k, v)
        engine.env = VmEnv(seed=inp.env_seed)
        ctx = bytearray(inp.ctx)
        if self.region is not None and inp.region is not None:
            self.region[:] = inp.region
        if hook is not None and self.region is not None:
            for f in hook.fields:
                if f.pointer:
                    ctx[f.offset:f.offset + 8] = self.region_addr.to_bytes(8, "little")
        return ctx

    def result(self, r0: int, ctx: bytearray) -> Result:
        hook = self.case.target.hook
        ctx_out = bytearray(ctx)
        if hook is not None:
            for f in hook.fields:
                if f.pointer:
                    ctx_out[f.offset:f.offset + f.size] = bytes(f.size)
            if hook.returns_pointer and self.region is not None and \
                    0 <= r0 - self.region_addr <= len(self.region):
                r0 = r0 - self.region_addr
        return Result(r0, bytes(ctx_out), bytes(self.region or b""),
                      [sorted(m.items()) for m in self.engine.maps])

    def run(self, inp: Input) -> Result:
        ctx = self.prepare(inp)
        self.last_r0 = self.engine.run(ctx)
        self.last_ctx = ctx
        return self.result(self.last_r0, ctx)

    def contract(self, inp: Input) -> str | None:
        """What the last run did that an accepted program must not do: return
        outside the hook's range, write a read-only context field, or leave an
        address of the engine's memory where the host can read it."""
        hook, r0, ctx = self.case.target.hook, self.last_r0, self.last_ctx
        if hook is not None and hook.returns_pointer:
            if r0 and not (self.region is not None and self.region_addr <= r0
                           <= self.region_addr + len(self.region) - RETURNED_SIZE):
                return f"r0 = {r0:#x} is neither 0 nor a pointer to {RETURNED_SIZE} bytes " \
                    "inside the region"
        elif hook is not None:
            signed = r0 - (1 << 64) if r0 >> 63 else r0
            if not hook.ret_min <= signed <= hook.ret_max:
                return f"r0 = {signed} is outside the hook's range [{hook.ret_min}, " \
                    f"{hook.ret_max}]"
        if hook is not None:
            for f in hook.fields:
                span = slice(f.offset, f.offset + f.size)
                if not f.writable and not f.pointer and ctx[span] != inp.ctx[span]:
                    return f"read-only context field '{f.name}' was written"
        space = getattr(self.engine, "space", None)
        if space is None:
            return None
        words: list[tuple[str, int]] = []
        if hook is None or not hook.returns_pointer:
            words.append(("r0", r0))
        # (where, bytes after the run, bytes before it): only words that changed count
        places = [("the context", bytes(ctx), bytes(inp.ctx))]
        for m, entries in zip(self.engine.maps, inp.entries, strict=True):
            before = dict(entries)
            places += [(f"map '{m.name}'", bytes(v), before.get(k, b"")) for k, v in m.items()]
        if self.region is not None and inp.region is not None:
            places.append(("the region", bytes(self.region), bytes(inp.region)))
        for name, data, old in places:
            old = old.ljust(len(data), b"\0")
            if data == old:
                continue
            first = next(i for i in range(len(data)) if data[i] != old[i])
            last = max(i for i in range(len(data)) if data[i] != old[i])
            words += [(name, int.from_bytes(data[i:i + 8], "little"))
                      for i in range(max(0, first - 7), min(last, len(data) - 8) + 1)]
        for name, w in words:
            obj = space.object_at(w)
            low = (w & 0xFFFFFFFF) - 0x8000_0000
            if obj is not None and -STACK_SLACK <= low <= len(obj.buf) + STACK_SLACK:
                if hook is not None and name == "the context" and self.region is not None \
                        and obj.buf is self.region:
                    continue  # the host's own region pointer field
                return f"pointer leak: {name} holds the address {w:#x} ({obj.name})"
        return None


class Oracles:
    """Runs the four oracles on cases; engines and helpers are built per case."""

    def __init__(self, helpers: HelperTable | None = None, *, runs: int = 3,
                 verify_seconds: float = VERIFY_SECONDS, budget: int | None = None,
                 verifier: Callable[..., Any] | None = None, run_budget: int = RUN_BUDGET,
                 long_budget: int = LONG_BUDGET) -> None:
        if helpers is None:
            from bpfvm.stdhelpers import standard_helpers
            helpers = standard_helpers()
        self.helpers = helpers
        self.runs = runs
        self.verify_seconds = verify_seconds
        self.budget = budget
        self._verify = verifier
        self.run_budget, self.long_budget = run_budget, long_budget
        self._long = long_budget

    def verify(self, case: Case) -> tuple[Any, Finding | None]:
        """Oracle 4: a verdict, in time and budget, without raising."""
        verify = self._verify
        if verify is None:
            from verifier import verify
        t = case.target
        kwargs: dict[str, Any] = {"ctx_size": t.ctx_size, "helpers": self.helpers}
        if t.objects:
            kwargs["objects"] = t.object_sizes()
        if self.budget is not None:
            kwargs["budget"] = self.budget
        try:
            with _time_limit(self.verify_seconds):
                verdict = verify(case.program, t.hook, **kwargs)
        except _Timeout:
            return None, Finding("verifier-timeout",
                                 f"no verdict within {self.verify_seconds:g} s")
        except RecursionError:
            return None, Finding("verifier-crash", "RecursionError")
        except Exception as exc:
            return None, Finding("verifier-crash", f"{type(exc).__name__}: {exc}")
        if not isinstance(getattr(verdict, "accepted", None), bool):
            return None, Finding("verifier-crash", f"returned {type(verdict).__name__}, "
                                 "not a verdict")
        visits = (getattr(verdict, "stats", None) or {}).get("visits")
        budget = self.budget if self.budget is not None else self._default_budget()
        if isinstance(visits, int) and budget is not None and visits > budget:
            return None, Finding("verifier-budget", f"the analysis made {visits} visits, over "
                                 f"its budget of {budget}")
        return verdict, None

    def _default_budget(self) -> int | None:
        if self._verify is not None:
            return None
        from verifier import DEFAULT_BUDGET
        return int(DEFAULT_BUDGET)

    def interp(self, case: Case, facts: Any) -> tuple[Runner, Probe]:
        vm = Interpreter(case.program, self.helpers, maps=make_maps(case.program.maps),
                         budget=self.run_budget)
        return Runner(vm, case), Probe(vm, facts)

    def execute(self, case: Case, verdict: Any, rng: random.Random,
                jit: bool = False) -> tuple[Finding | None, int]:
        """Oracles 1-3 (and 2 when ``jit``) over ``self.runs`` inputs; (finding, runs)."""
        facts = getattr(verdict, "facts", None)
        self._long = self.long_budget_for(case, facts)
        runner, probe = self.interp(case, facts)
        pool = value_pool(case)
        jit_runner = self._jit(case) if jit else None
        if isinstance(jit_runner, Finding):
            return jit_runner, 0
        for n in range(self.runs):
            inp = draw_input(case, rng, pool)
            try:
                probe.garbage, probe.fresh = 0, True
                first = self._run_budgeted(runner, case, inp)
                if probe.violation:
                    return Finding("range", probe.violation, inp.describe()), n + 1
                broken = runner.contract(inp) if runner.last_ctx is not None else None
                if broken and broken.startswith("pointer leak") and \
                        not self._leak_confirmed(case, inp, first, jit_runner):
                    broken = None
                if broken:
                    return Finding("contract", broken, inp.describe()), n + 1
                probe.garbage, probe.fresh = inp.garbage | 1, True
                second = runner.run(inp)
            except VmFault as fault:
                return Finding("fault", str(fault), inp.describe()), n + 1
            if probe.violation:
                return Finding("range", probe.violation, inp.describe()), n + 1
            if first != second:
                return Finding("uninit", "result depends on uninitialised stack or registers: "
                               + _diff(first, second), inp.describe()), n + 1
            if jit_runner is not None:
                try:
                    got = jit_runner.run(inp)
                except VmFault as fault:
                    return Finding("jit", f"JIT faulted, interpreter did not: {fault}",
                                   inp.describe()), n + 1
                if got != first:
                    return Finding("jit", "interpreter and JIT disagree: " + _diff(first, got),
                                   inp.describe()), n + 1
        return None, self.runs

    def _run_budgeted(self, runner: Runner, case: Case, inp: Input) -> Result:
        runner.last_ctx = None
        try:
            return runner.run(inp)
        except VmFault:
            if runner.engine.steps < runner.engine.budget:
                raise
        long_vm = Interpreter(case.program, self.helpers, maps=make_maps(case.program.maps),
                              budget=self._long)
        return Runner(long_vm, case).run(inp)

    def _leak_confirmed(self, case: Case, inp: Input, result: Result, jit_runner: Any) -> bool:
        """A value that looks like an address is a leak only if the output
        changes with the addresses: the JIT places objects elsewhere."""
        runner = jit_runner if isinstance(jit_runner, Runner) else self._jit(case)
        if not isinstance(runner, Runner):
            return True  # no second engine to tell: report it
        try:
            return runner.run(inp) != result
        except VmFault:
            return True

    def long_budget_for(self, case: Case, facts: Any) -> int:
        """The instruction budget a run may need: generous when the verifier
        bounded every loop's trip count, ``long_budget`` otherwise."""
        loops = getattr(facts, "loops", None) or {}
        bound = len(case.program.insns)
        for _reg, trips in loops.values():
            if not isinstance(trips, int):
                return self.long_budget
            bound *= trips + 1
            if bound > MAX_BUDGET:
                return MAX_BUDGET
        return max(self.long_budget, bound)

    def _jit(self, case: Case) -> Any:
        try:
            from bpfvm.jit import Jit
        except ImportError:
            return None
        try:
            return Runner(Jit(case.program, self.helpers, maps=make_maps(case.program.maps)),
                          case)
        except Exception as exc:
            return Finding("jit", f"JIT failed to compile an accepted program: "
                           f"{type(exc).__name__}: {exc}")

    def check(self, case: Case, rng: random.Random, jit: bool = False) -> Outcome:
        """All oracles on one case."""
        if check(case.program.insns, self.helpers):
            return Outcome(wellformed=False)
        start = time.perf_counter()
        verdict, finding = self.verify(case)
        out = Outcome(wellformed=True, verify_seconds=time.perf_counter() - start)
        if finding is not None or not verdict.accepted:
            out.finding = finding
            return out
        out.accepted = True
        out.jit_checked = jit
        try:
            out.finding, out.runs = self.execute(case, verdict, rng, jit)
        except Exception as exc:  # an engine that breaks on an accepted program is a finding
            out.finding = Finding("engine-crash", f"{type(exc).__name__}: {exc}")
        return out


def _diff(a: Result, b: Result) -> str:
    if a.r0 != b.r0:
        return f"r0 {a.r0:#x} vs {b.r0:#x}"
    if a.ctx != b.ctx:
        return f"context {a.ctx.hex()} vs {b.ctx.hex()}"
    if a.region != b.region:
        return "region contents differ"
    return "map contents differ"
