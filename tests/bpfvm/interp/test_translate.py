"""The interpreter's translated form (what ``Interpreter.bind`` returns)
against the reference loop, on the execution corpora of
``tests/bpfvm/test_corpora.py``: the ALU/jump rows, the hand-written
programs (faults, the budget, maps, helpers), the conformance vectors, the
verifier's accepted cases, the programs of ``programs/`` and drawn
straight-line programs.  Each run compares r0 or the fault, the memory
after, the maps and the trace; the corpora must exercise the translation
(not only the programs it leaves to the reference loop)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfvm.asm.assembler import assemble
from bpfvm.engine import FAULT
from bpfvm.interp.interpreter import Interpreter
from bpfvm.isa.insn import Insn, lddw
from bpfvm.program import Program
from bpfvm.stdhelpers import conformance_helpers, standard_helpers
from bpfvm.vmenv import VmEnv
from mmcore.hooks.specs import HOOKS
from tests.bpfvm import test_corpora as corpora

USED = Counter()  # translated / reference runs of the bound calls below


class Translated:
    """An interpreter run through its bound call: ``run(mem)`` binds ``mem``
    (a run with no ``mem`` goes to the reference loop, as there is no buffer)."""

    def __init__(self, interp: Interpreter) -> None:
        self.interp = interp

    def __getattr__(self, name: str) -> Any:
        return getattr(self.interp, name)

    def run(self, mem: bytearray | None = None) -> int:
        if mem is None:  # r1 = 0: nothing to bind
            USED["reference"] += 1
            return self.interp.run(None)
        fn = self.interp.bind(mem)
        translated = fn.__name__ == "bound"
        USED["translated" if translated else "reference"] += 1
        r0 = fn()
        if r0 == FAULT:
            self.interp.check()
        return r0


def pair(program: Program, helpers: Any, budget: int, seed: int = 7) -> tuple[Any, Any]:
    """(reference interpreter, translated one) for ``program``."""
    return (Interpreter(program, helpers, env=VmEnv(seed=seed), budget=budget),
            Translated(Interpreter(program, helpers, env=VmEnv(seed=seed), budget=budget)))


def test_the_placement_program_is_translated():
    text = (".hook placement\n    r0 = *(u32 *)(r1 + 12)\n    r2 = *(u32 *)(r1 + 16)\n"
            "    if r0 >= r2 goto zero\n    exit\nzero:\n    r0 = 0\n    exit\n")
    ref, tr = pair(assemble(text), standard_helpers(), 100)
    for home, nodes in ((1, 2), (3, 2), (0, 1)):
        ctx = bytearray(HOOKS["placement"].ctx_size)
        ctx[12], ctx[16] = home, nodes
        fn = tr.interp.bind(ctx)
        assert fn.__name__ == "bound"
        assert fn() == ref.run(bytearray(ctx)) == (home if home < nodes else 0)


@pytest.mark.parametrize(("text", "want"), [p[1:] for p in corpora.ROW_PROGRAMS],
                         ids=[p[0] for p in corpora.ROW_PROGRAMS])
def test_row_program(text: str, want: int) -> None:
    ref, tr = pair(assemble(text, "row.s", syntax="conformance"), standard_helpers(), 100_000)
    assert tr.run(bytearray()) == ref.run(bytearray()) == want


@pytest.mark.parametrize("case", corpora.CASES, ids=[c["name"] for c in corpora.CASES])
def test_program_case(case: dict[str, Any]) -> None:
    helpers = corpora.CASE_HELPERS[case.get("helpers", "standard")]()
    ref, tr = pair(corpora.build(case), helpers, case.get("budget", 100_000))
    assert corpora.outcome(tr, case) == corpora.outcome(ref, case)


@pytest.mark.skipif(not corpora.CONFORMANCE.is_dir(), reason=f"{corpora.CONFORMANCE} is absent")
@pytest.mark.parametrize("path", corpora.vectors(), ids=lambda p: p.stem)
def test_conformance_vector(path: Any) -> None:
    from bpfvm.conformance import load_vector, program_of

    vector = load_vector(path)
    ref, tr = pair(program_of(vector), conformance_helpers(), corpora.BUDGET)
    expected = corpora.observe(ref, bytes(vector.mem))
    assert corpora.observe(tr, bytes(vector.mem)) == expected
    assert expected["r0"] == vector.result


@pytest.mark.parametrize("case", corpora.verifier_cases(), ids=lambda c: c.name)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_verifier_accepted_case(case: Any, data: st.DataObject) -> None:
    from tests.verifier.test_corpus import HOOKS as TEST_HOOKS
    from tests.verifier.test_corpus import OBJECTS

    hook = TEST_HOOKS.get(case.meta.get("hook", ""))
    size = hook.ctx_size if hook else int(case.meta.get("ctx", "0"))
    ctx = data.draw(st.binary(min_size=size, max_size=size))
    objects = {name: OBJECTS[name] for name in hook.objects} if hook else None
    ref, tr = pair(assemble(case.source, case.name), standard_helpers(), corpora.BUDGET)
    assert corpora.observe(tr, ctx, hook, objects) == corpora.observe(ref, ctx, hook, objects)


@pytest.mark.parametrize("program", corpora.program_sections())
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_policy_program(program: Program, data: st.DataObject) -> None:
    hook = HOOKS[program.hook] if program.hook else None
    size = hook.ctx_size if hook else 64
    ctx = data.draw(st.binary(min_size=size, max_size=size))
    objects = {name: corpora.REGION_SIZE for name in hook.objects} if hook else None
    ref, tr = pair(program, standard_helpers(), corpora.BUDGET)
    assert corpora.observe(tr, ctx, hook, objects) == corpora.observe(ref, ctx, hook, objects)


def _plain(unit: list[Insn]) -> bool:
    """No local call and no atomic (left to the reference loop)."""
    return corpora.CALL_F not in unit and all(i.opcode & 0xE7 != 0xC3 for i in unit)


@st.composite
def straight_programs(draw: st.DrawFn) -> Program:
    """The corpus's drawn programs without local calls or atomics; a jump
    skips whole units, as there."""
    code: list[Insn] = [Insn(0xBF, corpora.CTX_REG, 1)]
    for r in corpora.WORK:
        code += lddw(r, draw(st.integers(0, corpora.M64)))
    code += corpora.body(draw, draw(st.integers(1, 30)), callee=False, keep=_plain)
    code += [Insn(0x7B, corpora.CTX_REG, r, 64 + 8 * k)
             for k, r in enumerate(corpora.WORK)] + [Insn(0x95)]
    return Program(code, list(corpora.MAPS))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=straight_programs(), ctx=st.binary(min_size=corpora.CTX, max_size=corpora.CTX))
def test_drawn_program(program: Program, ctx: bytes) -> None:
    ref, tr = pair(program, standard_helpers(), corpora.BUDGET)
    before = USED["translated"]
    assert corpora.observe(tr, ctx) == corpora.observe(ref, ctx)
    assert USED["translated"] == before + 1


def test_a_budget_shorter_than_a_loop_faults_where_the_reference_does():
    text = "r0 = 0\nloop:\nr0 += 1\nif r0 < 1000 goto loop\nexit\n"
    for budget in (1, 2, 3, 10, 1999, 2000, 2001, 2002, 3000):
        ref, tr = pair(assemble(text), standard_helpers(), budget)
        got, want = corpora.outcome(tr, {}), corpora.outcome(ref, {})
        assert got == want
        assert ("budget" in str(want["result"])) == (budget < 2002)


def test_the_corpora_run_translated():
    """Run after the tests above (same module, in order): most bound calls were translated."""
    assert USED["translated"] > 3 * USED["reference"] > 0
