"""The conformance vectors through the verifier (context sized from ``-- mem``).

Every vector is a valid, terminating program that stays inside its input and
stack.  The verifier accepts all of them but the ones that shift by a
constant outside 0..width-1: the ISA masks the amount, the kernel's verifier
rejects such a shift as a certain bug ("invalid shift"), and so do we.  An
accepted vector must also run to its expected result with the verifier's
claimed ranges holding, within its claimed instruction bound.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfvm.conformance import load_vector, program_of
from bpfvm.interp.interpreter import Interpreter
from bpfvm.stdhelpers import conformance_helpers
from tests.conftest import CONFORMANCE
from verifier import verify

VECTORS = sorted((CONFORMANCE / "tests").glob("*.data")) if CONFORMANCE.is_dir() else []
HELPERS = conformance_helpers()
SHIFT_IMM_OUT_OF_RANGE = ("sh32-imm-high", "sh32-imm-neg", "sh64-imm-high", "sh64-imm-neg")

pytestmark = pytest.mark.skipif(not VECTORS, reason=f"conformance vectors absent ({CONFORMANCE})")


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector_accepted(path: Path) -> None:
    vector = load_vector(path)
    if vector.skip:
        pytest.skip(vector.skip)
    program = program_of(vector)
    verdict = verify(program, ctx_size=len(vector.mem), helpers=HELPERS)
    if path.stem.endswith(SHIFT_IMM_OUT_OF_RANGE):
        assert not verdict.accepted
        assert all("invalid shift" in d.message for d in verdict.diagnostics), verdict.summary()
        return
    assert verdict.accepted, verdict.summary()
    facts = verdict.facts
    assert facts is not None
    problems: list[str] = []

    def on_step(pc: int, regs: list[int]) -> None:
        if (msg := facts.check(pc, regs)) is not None:
            problems.append(msg)

    vm = Interpreter(program, HELPERS, on_step=on_step)
    r0 = vm.run(bytearray(vector.mem))
    assert not problems, problems[:3]
    assert vm.steps <= facts.max_insns
    if vector.result is not None:
        assert r0 == vector.result
