"""The fuzzer's oracles, each shown firing on a program built to trip it and
silent on its sound twin (with stand-in verifiers, so that the oracles are
tested independently of the real one)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import pytest

from bpfvm.fuzz.builder import Case, Target, ins, target_named
from bpfvm.fuzz.oracles import Oracles
from bpfvm.isa.insn import Insn
from bpfvm.program import Program

EXIT = ins("exit")


@dataclass
class Verdict:
    accepted: bool = True
    facts: object = None
    diagnostics: list = field(default_factory=list)


def accept_all(program, hook, **kw) -> Verdict:
    return Verdict()


def mem_case(*insns: Insn, size: int = 16) -> Case:
    return Case(Program(list(insns)), Target(None, size))


def outcome(case: Case, verifier=accept_all, **kw):
    kw.setdefault("run_budget", 1000)
    kw.setdefault("long_budget", 5000)
    return Oracles(verifier=verifier, **kw).check(case, random.Random(1))


SOUND = mem_case(ins("ldxdw", 0, 1, 8), EXIT)


def test_sound_program_passes_every_oracle() -> None:
    out = outcome(SOUND)
    assert out.wellformed and out.accepted and out.finding is None and out.runs == 3


def test_rejected_program_is_not_run() -> None:
    out = outcome(mem_case(ins("ldxdw", 0, 1, 12), EXIT), lambda p, h, **kw: Verdict(False))
    assert out.wellformed and not out.accepted and out.finding is None and out.runs == 0


def test_malformed_program_is_not_verified() -> None:
    calls = []
    out = outcome(mem_case(ins("ja", off=5), EXIT), lambda *a, **k: calls.append(a))
    assert not out.wellformed and calls == []


@pytest.mark.parametrize(("insns", "oracle", "fragment"), [
    ((ins("ldxdw", 0, 1, 12), EXIT), "fault", "read of 8 bytes"),
    ((ins("ldxdw", 0, 10, -8), EXIT), "uninit", "uninitialised"),
    ((ins("mov64_x", 0, 7), EXIT), "uninit", "r0"),
    ((ins("mov64_k", 0, 0), ins("ja", off=-1), EXIT), "fault", "budget"),
])
def test_interpreter_oracles_fire(insns, oracle: str, fragment: str) -> None:
    finding = outcome(mem_case(*insns)).finding
    assert finding is not None and finding.oracle == oracle and fragment in finding.message


def test_verifier_exception_is_a_finding() -> None:
    def broken(program, hook, **kw):
        raise ZeroDivisionError("boom")
    finding = outcome(SOUND, broken).finding
    assert finding.oracle == "verifier-crash" and "ZeroDivisionError: boom" in finding.message


def test_verifier_must_return_a_verdict() -> None:
    finding = outcome(SOUND, lambda p, h, **kw: "yes").finding
    assert finding.oracle == "verifier-crash" and "not a verdict" in finding.message


def test_verifier_hang_is_cut_short() -> None:
    def slow(program, hook, **kw):
        time.sleep(5)
    finding = outcome(SOUND, slow, verify_seconds=0.2).finding
    assert finding.oracle == "verifier-timeout"


class ClaimsZero:
    """Facts claiming r0 == 0 at pc 1."""

    def check(self, pc: int, regs) -> str | None:
        return None if pc != 1 or regs[0] == 0 else f"pc 1: r0 = {regs[0]:#x} is not 0"


def test_wrong_range_claim_is_a_finding() -> None:
    case = mem_case(ins("ldxb", 0, 1, 0), EXIT)
    finding = outcome(case, lambda p, h, **kw: Verdict(facts=ClaimsZero())).finding
    assert finding.oracle == "range" and "is not 0" in finding.message


def test_true_range_claim_is_silent() -> None:
    case = mem_case(ins("mov64_k", 0, imm=0), EXIT)
    assert outcome(case, lambda p, h, **kw: Verdict(facts=ClaimsZero())).finding is None


def test_region_pointer_is_filled_in_for_page_table_hooks() -> None:
    target = target_named("pt_lookup")
    region = target.hook.field_named("region")
    size = target.hook.field_named("region_size")
    insns = [ins("ldxdw", 2, 1, region.offset), ins("ldxdw", 3, 1, size.offset),
             ins("add64_x", 2, 3), ins("ldxdw", 0, 2, -8), ins("mov64_k", 0, 0), EXIT]
    out = outcome(Case(Program(insns, hook="pt_lookup"), target))
    assert out.accepted and out.finding is None
    insns[3] = ins("ldxdw", 0, 2, 0)  # one past the end of the region
    assert outcome(Case(Program(insns, hook="pt_lookup"), target)).finding.oracle == "fault"


def test_jit_oracle_agrees_on_a_sound_program() -> None:
    pytest.importorskip("bpfvm.jit.engine")
    out = Oracles(verifier=accept_all).check(SOUND, random.Random(1), jit=True)
    assert out.jit_checked and out.finding is None


@pytest.mark.parametrize(("hook", "insns", "fragment"), [
    ("reclaim", (ins("mov64_k", 0, imm=101), EXIT), "outside the hook's range"),
    ("reclaim", (ins("stw", 1, off=0, imm=5), ins("mov64_k", 0, imm=1), EXIT),
     "read-only context field 'nr_to_reclaim'"),
    ("pt_map", (ins("mov64_k", 0, imm=8), EXIT), "neither 0 nor a pointer"),
])
def test_contract_oracle_fires(hook: str, insns, fragment: str) -> None:
    case = Case(Program(list(insns), hook=hook), target_named(hook))
    finding = outcome(case).finding
    assert finding is not None and finding.oracle == "contract" and fragment in finding.message


@pytest.mark.parametrize(("insns", "fragment"), [
    ((ins("stxdw", 1, 10, 0), ins("mov64_k", 0, imm=0), EXIT), "the context holds the address"),
    ((ins("mov64_x", 0, 10), EXIT), "pointer leak: r0 holds"),
])
def test_pointer_leak_is_a_finding(insns, fragment: str) -> None:
    finding = outcome(mem_case(*insns)).finding
    assert finding.oracle == "contract" and fragment in finding.message


def test_writable_field_and_valid_return_are_fine() -> None:
    target = target_named("reclaim")
    off = target.hook.field_named("target_pid").offset
    case = Case(Program([ins("stw", 1, off=off, imm=5), ins("mov64_k", 0, imm=100), EXIT],
                        hook="reclaim"), target)
    assert outcome(case).finding is None


def test_verifier_over_its_budget_is_a_finding() -> None:
    def spendthrift(program, hook, **kw):
        verdict = Verdict(False)
        verdict.stats = {"visits": 101}
        return verdict
    finding = outcome(SOUND, spendthrift, budget=100).finding
    assert finding.oracle == "verifier-budget" and "101 visits" in finding.message
    assert outcome(SOUND, spendthrift, budget=101).finding is None


class Bounded:
    """Facts claiming every run takes at most ``max_insns`` instructions."""

    def __init__(self, max_insns: int) -> None:
        self.max_insns = max_insns

    def check(self, pc, regs):
        return None


@pytest.mark.parametrize(("claim", "fragment"), [
    (3, "executed 4 instructions, more than the claimed bound of 3"),
    (500, "ran past the verifier's claimed bound of 500"),
])
def test_claimed_instruction_bound_is_checked(claim: int, fragment: str) -> None:
    loop = (ins("mov64_k", 0, imm=0), ins("add64_k", 0, imm=1), ins("jlt64_k", 0, off=-2,
                                                                      imm=2000), EXIT)
    short = (ins("mov64_k", 0, imm=0), ins("mov64_k", 1, imm=0), ins("mov64_k", 2, imm=0), EXIT)
    case = mem_case(*(short if claim == 3 else loop))
    finding = outcome(case, lambda p, h, **kw: Verdict(facts=Bounded(claim))).finding
    assert finding is not None and fragment in finding.message
    assert outcome(case, lambda p, h, **kw: Verdict(facts=Bounded(10_000))).finding is None


def counting_loop(trips: int, *tail: Insn) -> Case:
    """r0 counts to ``trips`` (2 instructions a trip), then ``tail``."""
    return mem_case(ins("mov64_k", 0, imm=0), ins("add64_k", 0, imm=1),
                    ins("jlt64_k", 0, off=-2, imm=trips), *tail, EXIT)


def test_claimed_bound_is_checked_past_the_short_budget() -> None:
    case = counting_loop(2000)  # about 4,000 instructions; run_budget is 1,000
    finding = outcome(case, lambda p, h, **kw: Verdict(facts=Bounded(3000))).finding
    assert finding is not None and "ran past the verifier's claimed bound of 3000" \
        in finding.message


def test_fault_after_the_short_budget_is_found() -> None:
    case = counting_loop(600, ins("ldxdw", 0, 1, 12))  # out of the 16-byte context
    finding = outcome(case).finding
    assert finding is not None and finding.oracle == "fault" and "read of 8 bytes" \
        in finding.message
    assert outcome(counting_loop(600, ins("ldxdw", 0, 1, 8))).finding is None


def interpreter_tails(monkeypatch) -> list[int]:
    """Long runs go on in the interpreter (as where no JIT is installed);
    the budgets the interpreter resumes them with are listed in the result."""
    from bpfvm.interp.interpreter import Interpreter
    monkeypatch.setattr(Oracles, "_native_tail", lambda self, case, inp: None)
    resumed: list[int] = []
    real = Interpreter.resume
    monkeypatch.setattr(Interpreter, "resume",
                        lambda vm, budget: resumed.append(budget) or real(vm, budget))
    return resumed


def test_one_input_per_case_runs_past_the_short_budget(monkeypatch) -> None:
    resumed = interpreter_tails(monkeypatch)
    out = outcome(counting_loop(600))
    assert out.finding is None and out.runs == 3
    assert resumed == [5000 + 1 - 1000]  # the long budget, less what ran checked


def test_a_run_longer_than_the_long_budget_is_cut_not_reported(monkeypatch) -> None:
    resumed = interpreter_tails(monkeypatch)
    case = counting_loop(3000)  # about 6,000 instructions; the long budget is 5,000
    out = outcome(case, lambda p, h, **kw: Verdict(facts=Bounded(10_000)))
    assert out.finding is None and out.runs == 3
    assert resumed == [5000 + 1 - 1000]  # once per case, up to the long budget


@pytest.mark.parametrize("native", [True, False])
def test_claimed_bound_and_faults_past_the_short_budget_on_either_engine(
        monkeypatch, native: bool) -> None:
    pytest.importorskip("bpfvm.jit.engine")
    if not native:
        interpreter_tails(monkeypatch)
    long_run = counting_loop(3000)  # 6,002 instructions
    claims = lambda bound: lambda p, h, **kw: Verdict(facts=Bounded(bound))  # noqa: E731
    assert outcome(long_run, claims(10_000), long_budget=20_000).finding is None
    finding = outcome(long_run, claims(6_001), long_budget=20_000).finding
    assert finding is not None and "claimed bound of 6001" in finding.message
    assert outcome(long_run, claims(6_002), long_budget=20_000).finding is None
    finding = outcome(counting_loop(3000, ins("ldxdw", 0, 1, 12)), claims(10_000),
                      long_budget=20_000).finding
    assert finding is not None and finding.oracle == "fault" and "read of 8 bytes" \
        in finding.message


def test_a_long_run_is_finished_natively(monkeypatch) -> None:
    pytest.importorskip("bpfvm.jit.engine")
    from bpfvm.interp.interpreter import Interpreter
    monkeypatch.setattr(Interpreter, "resume", lambda vm, budget: pytest.fail("resumed"))
    out = outcome(counting_loop(3000), lambda p, h, **kw: Verdict(facts=Bounded(10_000)),
                  long_budget=20_000)
    assert out.finding is None and out.runs == 3


def test_checked_jit_faulting_alone_is_an_engine_finding(monkeypatch) -> None:
    jit = pytest.importorskip("bpfvm.jit.engine")
    from bpfvm.errors import VmFault

    def run(self, mem=None):
        if self.checked:
            raise VmFault(2, "made up")
        return real(self, mem)
    real = jit.Jit.run
    monkeypatch.setattr(jit.Jit, "run", run)
    finding = outcome(counting_loop(3000), lambda p, h, **kw: Verdict(facts=Bounded(10_000)),
                      long_budget=20_000).finding
    assert finding is not None and finding.oracle == "jit" and "made up" in finding.message


def test_an_executed_case_leaves_no_reference_cycles(monkeypatch) -> None:
    import gc
    import weakref
    engines = []
    real = Oracles.interp

    def interp(self, case, facts):
        runner, probe = real(self, case, facts)
        engines.append(weakref.ref(runner.engine))
        return runner, probe
    monkeypatch.setattr(Oracles, "interp", interp)
    gc.disable()
    try:
        out = outcome(counting_loop(10))
        assert out.finding is None and len(engines) == 1
        assert engines[0]() is None  # freed at once, without a collection
    finally:
        gc.enable()
