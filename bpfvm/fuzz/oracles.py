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
reaches that pc in the first ``RUN_BUDGET`` instructions of a run, and no
run takes more instructions than the verifier's claimed bound.  A run
longer than that budget is run again whole on the checked JIT
(bounds-checked, counting instructions, the claimed bound as its budget);
where that faults, the interpreter goes on with the run instead, without
the claim checks, to its end or ``LONG_BUDGET`` instructions, so findings
come from the reference engine.  This is done for the first run of one
input per case; other runs are cut at the short budget (a cut run is not
compared with its twin).
Oracle (1) also holds accepted programs to the rest of the contract the
verifier vouches for: r0 within the hook's range (or a pointer into the
region where the hook returns one), read-only context fields unchanged,
and no address of the engine's memory left in r0, the context, a map or
the region (a pointer leak).

An oracle that fires returns a :class:`Finding`; this module neither
generates nor reduces programs.  Inputs, instrumented engines and results
are in :mod:`bpfvm.fuzz.execute`.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bpfvm.errors import VmFault
from bpfvm.fuzz.builder import Case
from bpfvm.fuzz.execute import Executor, Input, Probe, RunResult, draw_input, value_pool
from bpfvm.helpers import HelperTable
from bpfvm.interp.interpreter import Interpreter
from bpfvm.isa.insn import check
from bpfvm.maps import make_maps

M64 = (1 << 64) - 1
RUN_BUDGET = 20_000  # instructions per run checked against the claims; one input per
LONG_BUDGET = 1_000_000  # case may go on, unchecked, to the verifier's claimed bound
# (facts.max_insns) or what its loop trip counts allow, but not past LONG_BUDGET;
RELOCATED = 1 << 12  # first object number of the leak check's interpreter: other addresses
MAX_BUDGET = 20_000_000  # trip counts allowing more than this are a finding
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
        self._claimed: int | None = None
        self._steps = 0
        # per case: the checked JIT for its long run (None: not made yet, False: none),
        # the runner that finished the last run, and how the checked JIT faulted
        self._tail: Executor | bool | None = None
        self._ran: Executor | None = None
        self._tail_fault: str | None = None

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
        from verifier import VISIT_BUDGET
        return int(VISIT_BUDGET)

    def interp(self, case: Case, facts: Any) -> tuple[Executor, Probe]:
        # only accepted programs run, and the verifier (or, for a stand-in, check()
        # before it) has checked their bytecode with this helper table
        vm = Interpreter(case.program, self.helpers, maps=make_maps(case.program.maps),
                         budget=self.run_budget, validated=True)
        return Executor(vm, case), Probe(vm, facts)

    def execute(self, case: Case, verdict: Any, rng: random.Random,
                jit: bool = False) -> tuple[Finding | None, int]:
        """Oracles 1-3 (and 2 when ``jit``) over ``self.runs`` inputs; (finding, runs)."""
        facts = getattr(verdict, "facts", None)
        claimed = getattr(facts, "max_insns", None)
        self._claimed = claimed if isinstance(claimed, int) and claimed > 0 else None
        self._long = self._claimed or self.long_budget_for(case, facts)
        runner, probe = self.interp(case, facts)
        try:
            return self._execute(case, rng, jit, runner, probe)
        finally:  # freed by reference counting, not left to the garbage collector
            probe.release()
            self._ran = self._tail = None

    def _execute(self, case: Case, rng: random.Random, jit: bool, runner: Executor,
                 probe: Probe) -> tuple[Finding | None, int]:
        pool = value_pool(case)
        jit_runner = self._jit(case) if jit else None
        self._tail, self._ran, self._tail_fault = None, runner, None
        if isinstance(jit_runner, Finding):
            return jit_runner, 0
        long_left = 1  # runs past the short budget: for one input per case
        for n in range(self.runs):
            inp = draw_input(case, rng, pool)
            try:
                probe.garbage, probe.fresh = 0, True
                first = self._run_budgeted(runner, probe, inp, long_left > 0)
                if probe.violation:
                    return Finding("range", probe.violation, inp.describe()), n + 1
                steps = self._steps
                if steps > self.run_budget:
                    long_left -= 1
                if first is None:  # cut: what ran was checked
                    continue
                if self._claimed is not None and steps > self._claimed:
                    return Finding("range", f"a run executed {steps} instructions, more than "
                                   f"the claimed bound of {self._claimed}",
                                   inp.describe()), n + 1
                if self._tail_fault is not None:
                    return Finding("jit", "the checked JIT faulted, the interpreter did not: "
                                   + self._tail_fault, inp.describe()), n + 1
                broken = (self._ran or runner).contract(inp)
                if broken and broken.startswith("pointer leak") and \
                        not self._leak_confirmed(case, inp, first, jit_runner):
                    broken = None
                if broken:
                    return Finding("contract", broken, inp.describe()), n + 1
                probe.garbage, probe.fresh = inp.garbage | 1, True
                # the twin of a long run is cut; of a short one, it must end like it
                second = self._run_budgeted(runner, probe, inp, steps <= self.run_budget)
            except VmFault as fault:
                return Finding("fault", str(fault), inp.describe()), n + 1
            if probe.violation:
                return Finding("range", probe.violation, inp.describe()), n + 1
            if second is not None and first != second:
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

    def _run_budgeted(self, runner: Executor, probe: Probe, inp: Input,
                      complete: bool) -> RunResult | None:
        """A run whose first ``run_budget`` instructions are checked against
        the verifier's claims; a longer one is cut there (None) unless
        ``complete``: then it is run again on the checked JIT
        (:meth:`_native_tail`) or, where that faults, goes on in the
        interpreter without the claim checks (still bounds-checked, with
        garbage after calls) to the verifier's bound, but not past
        ``long_budget`` instructions where the JIT did not fault (a run
        stopped there is cut too).  The instructions it took are left in
        ``self._steps``."""
        vm = runner.engine
        vm.budget = self.run_budget
        probe.checking(True)
        self._ran = runner
        try:
            result = runner.run(inp)
            self._steps = vm.steps
            return result
        except VmFault as fault:
            if not vm.stopped:
                raise
            if self._claimed is not None and self._claimed < vm.budget:
                raise VmFault(fault.pc, f"ran past the verifier's claimed bound of "
                              f"{self._claimed} instructions") from None
            if self._long > MAX_BUDGET:  # no point in running on: say what was accepted
                raise VmFault(fault.pc, f"instruction budget of {vm.budget} exhausted; the "
                              f"verifier's loop trip counts allow about {self._long:.2e} "
                              "instructions") from None
            if not complete:
                self._steps = vm.steps
                return None
        fast = self._native_tail(runner.case, inp)
        if fast is not None:
            self._steps = self.run_budget + 1  # more than the prefix, at most the bound
            return fast
        probe.checking(False)
        # the bound is not checked to its end (but where the JIT faulted, the reference
        # engine decides: to the end)
        capped = self._long > self.long_budget and self._tail_fault is None
        try:
            end = self.long_budget if capped else self._long
            result = runner.resume(end + 1 - self.run_budget)
        except VmFault as fault:
            if self._claimed is not None and vm.steps > self._claimed:
                raise VmFault(fault.pc, f"ran past the verifier's claimed bound of "
                              f"{self._claimed} instructions") from None
            if capped and vm.stopped:
                self._steps = vm.steps
                return None
            raise
        finally:
            probe.checking(True)
        self._steps = vm.steps
        return result

    def _native_tail(self, case: Case, inp: Input) -> RunResult | None:
        """The whole run again on the checked JIT (bounds-checked, counting
        instructions), with the verifier's bound as its budget: native
        speed for a long run.  None when it faults or there is no JIT: then
        the interpreter goes on with the run, so that every finding comes
        from the reference engine (and a JIT that faults where the
        interpreter does not shows as an engine disagreement there)."""
        if self._tail is None:
            made = self._jit(case, checked=True)  # or None (no JIT), or a Finding (no code)
            self._tail = made if isinstance(made, Executor) else False
        tail = self._tail
        if not isinstance(tail, Executor):
            return None
        tail.engine.budget = self._long
        try:
            result = tail.run(inp)
        except VmFault as fault:
            self._tail_fault = str(fault)
            return None
        self._ran = tail
        return result

    def _leak_confirmed(self, case: Case, inp: Input, result: RunResult, jit_runner: Any) -> bool:
        """A value that looks like an address is a leak only if the output
        changes with the addresses: the run is repeated on an interpreter
        whose objects lie elsewhere (:data:`RELOCATED`), or on the checked
        JIT when the case has one.  Never the unchecked JIT: a program that
        leaks may do anything with the address it leaked."""
        if isinstance(jit_runner, Executor) and getattr(jit_runner.engine, "checked", False):
            runner = jit_runner
        else:
            engine = Interpreter(case.program, self.helpers, maps=make_maps(case.program.maps),
                                 validated=True, first_object=RELOCATED)
            runner = Executor(engine, case)
        try:
            return runner.run(inp) != result
        except VmFault:
            return True

    def long_budget_for(self, case: Case, facts: Any) -> int:
        """The instruction budget a run may need: what the verifier's loop trip
        counts allow (at least ``long_budget``); ``long_budget`` when a loop has
        no claimed count.  More than MAX_BUDGET means "more than we will run"."""
        loops = getattr(facts, "loops", None) or {}
        bound = len(case.program.insns)
        for _reg, trips in loops.values():
            if not isinstance(trips, int):
                return self.long_budget
            bound *= trips + 1
            if bound > MAX_BUDGET:
                return bound
        return max(self.long_budget, bound)

    def _jit(self, case: Case, checked: bool = False) -> Any:
        try:
            from bpfvm.jit.engine import Jit
        except ImportError:
            return None
        try:
            return Executor(Jit(case.program, self.helpers, maps=make_maps(case.program.maps),
                              checked=checked), case)
        except Exception as exc:
            return Finding("jit", f"JIT failed to compile an accepted program: "
                           f"{type(exc).__name__}: {exc}")

    def check(self, case: Case, rng: random.Random, jit: bool = False) -> Outcome:
        """All oracles on one case."""
        # the verifier checks the bytecode first and says so; a stand-in may not
        if self._verify is not None and check(case.program.insns, self.helpers):
            return Outcome(wellformed=False)
        start = time.perf_counter()
        verdict, finding = self.verify(case)
        if self._verify is None and verdict is not None and \
                (getattr(verdict, "stats", None) or {}).get("stage") == "bytecode":
            return Outcome(wellformed=False)
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


def _diff(a: RunResult, b: RunResult) -> str:
    if a.r0 != b.r0:
        return f"r0 {a.r0:#x} vs {b.r0:#x}"
    if a.ctx != b.ctx:
        return f"context {a.ctx.hex()} vs {b.ctx.hex()}"
    if a.region != b.region:
        return "region contents differ"
    return "map contents differ"
