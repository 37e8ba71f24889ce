"""A write to r10 is a valid instruction the verifier rejects only where it
may run (the kernel's selftests use one to mark code they prove dead); the
engines load such a program and run it."""

from __future__ import annotations

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.load import load
from bpfvm.stdhelpers import standard_helpers
from verifier import verify

HELPERS = standard_helpers()

DEAD = {
    "after-an-always-taken-test": "r0 = 0\nr1 = 5\nif r1 < 128 goto out\nr10 = 0\nout:\nexit\n",
    "ranges-predict-the-jump": (
        "call get_prandom_u32\nw0 &= 0xffffffff\nif w0 < 0x3 goto out\n"
        "if w0 s> 0x1 goto out\nif w0 s< 0x0 goto out\nr10 = 0\nout:\nr0 = 0\nexit\n"),
    "fetch-into-r10-dead": (
        "r0 = 0\n*(u64 *)(r10 - 8) = r0\nif r0 == 0 goto out\n"
        "r10 = atomic_fetch_add((u64 *)(r10 - 8), r10)\nout:\nexit\n"),
}
LIVE = {
    "after-a-test-that-may-fail": (
        "r0 = 0\nr1 = *(u8 *)(r1 + 0)\nif r1 < 128 goto out\nr10 = 0\nout:\nexit\n", 3),
    "fetch-into-r10": (
        "r0 = 0\n*(u64 *)(r10 - 8) = r0\n"
        "r10 = atomic_fetch_add((u64 *)(r10 - 8), r10)\nexit\n", 2),
}


@pytest.mark.parametrize("name", DEAD)
def test_dead_write_to_r10_is_accepted(name: str) -> None:
    verdict = verify(assemble(DEAD[name]), ctx_size=8, helpers=HELPERS)
    assert verdict.accepted, verdict.summary()


@pytest.mark.parametrize("name", LIVE)
def test_reachable_write_to_r10_is_rejected(name: str) -> None:
    text, pc = LIVE[name]
    verdict = verify(assemble(text), ctx_size=8, helpers=HELPERS)
    assert not verdict.accepted
    assert (pc, "r10 is read-only") in [(d.pc, d.message) for d in verdict.diagnostics]


def test_other_problems_of_a_write_to_r10_are_still_found() -> None:
    from bpfvm.isa.insn import Insn
    from bpfvm.program import Program

    # mov64_k r10 with a nonzero src field: malformed whether or not it runs
    program = Program([Insn(0xB7, 0, 0, 0, 0), Insn(0x05, 0, 0, 1, 0), Insn(0xB7, 10, 3, 0, 0),
                       Insn(0x95)])
    verdict = verify(program, helpers=HELPERS)
    assert not verdict.accepted
    assert "src field must be 0" in verdict.diagnostics[0].message


@pytest.mark.parametrize("engine", ["interp", "jit"])
@pytest.mark.parametrize("name", DEAD)
def test_dead_write_to_r10_loads_and_runs(name: str, engine: str) -> None:
    program = assemble(DEAD[name])
    loaded = load(program, helpers=HELPERS, engine=engine, ctx_size=8)
    assert loaded.verdict is not None and loaded.verdict.accepted
    results = {loaded.engine.run(bytearray(8)) for _ in range(3)}
    assert results == {0}  # every program here returns r0 = 0 on its live path
