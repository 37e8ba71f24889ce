"""The instruction bound (verifier.cost): exact on small programs, never
below what the interpreter executes, and the default limit an engine's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfvm.asm.assembler import assemble
from bpfvm.engine import INSN_BUDGET
from bpfvm.interp.interpreter import Interpreter
from bpfvm.stdhelpers import standard_helpers
from verifier import INSN_LIMIT, verify

HELPERS = standard_helpers()

# name -> (source, ctx bytes, bound claimed, instructions the interpreter runs on zeros)
CASES = {
    "straight": ("r0 = 1\nr0 += 1\nexit\n", 0, 3, 3),
    "lddw-one-insn": ("r0 = 0x100000000 ll\nr0 >>= 32\nexit\n", 0, 3, 3),
    "both-arms": ("r0 = *(u8 *)(r1 + 0)\nif r0 > 3 goto +2\nr0 = 1\nexit\nr0 = 2\nexit\n",
                  1, 6, 4),
    "loop-10": ("r0 = 0\nr1 = 0\nloop:\nr0 += r1\nr1 += 1\nif r1 < 10 goto loop\nexit\n",
                0, 33, 33),
    "loop-never-iterates": ("r0 = 0\nr1 = 20\nloop:\nr1 += 1\nif r1 < 10 goto loop\nexit\n",
                            0, 5, 5),
    "nested-3x4": ("r0 = 0\nr1 = 0\nouter:\nr2 = 0\ninner:\nr0 += 1\nr2 += 1\n"
                   "if r2 < 4 goto inner\nr1 += 1\nif r1 < 3 goto outer\nexit\n",
                   0, 2 + 3 * (1 + 4 * 3 + 2) + 1, 2 + 3 * (1 + 4 * 3 + 2) + 1),
    "callee-twice": ("r1 = 1\ncall f\ncall f\nexit\nf:\nr0 = 1\nexit\n", 0, 4 + 2 * 2,
                     4 + 2 * 2),
    "call-in-loop": ("r6 = 0\nloop:\ncall f\nr6 += 1\nif r6 < 5 goto loop\nexit\n"
                     "f:\nr0 = 0\nhead:\nr0 += 1\nif r0 < 7 goto head\nexit\n",
                     0, 1 + 5 * (3 + 1 + 7 * 2 + 1) + 1, 1 + 5 * (3 + 1 + 7 * 2 + 1) + 1),
    "per-call-site": ("r1 = 3\ncall f\nr1 = 5\ncall f\nexit\n"
                      "f:\nr0 = 0\nhead:\nif r0 >= r1 goto out\nr0 += 1\ngoto head\nout:\nexit\n",
                      0, 5 + (1 + 3 * 4 + 1) + (1 + 3 * 6 + 1), 5 + 12 + 18),
}


@pytest.mark.parametrize("name", CASES)
def test_bound_is_exact_and_covers_a_run(name: str) -> None:
    text, ctx, claimed, executed = CASES[name]
    program = assemble(text, f"{name}.s")
    verdict = verify(program, ctx_size=ctx, helpers=HELPERS)
    assert verdict.accepted, verdict.summary()
    assert verdict.facts is not None
    assert verdict.facts.max_insns == claimed
    assert verdict.stats["max_insns"] == claimed
    vm = Interpreter(program, HELPERS)
    vm.run(bytearray(ctx) if ctx else None)
    assert vm.steps == executed <= claimed


def test_default_limit_is_the_engines_budget() -> None:
    assert INSN_LIMIT == INSN_BUDGET


def test_loop_trip_bounds_in_facts() -> None:
    text, ctx, _, _ = CASES["per-call-site"]
    facts = verify(assemble(text, "p.s"), ctx_size=ctx, helpers=HELPERS).facts
    assert facts is not None
    assert facts.loops == {6: ("r0", 6)}  # the largest over the two call sites


def test_limit_keyword() -> None:
    text = CASES["loop-10"][0]
    program = assemble(text, "l.s")
    assert verify(program, helpers=HELPERS, insn_limit=33).accepted
    verdict = verify(program, helpers=HELPERS, insn_limit=32)
    assert not verdict.accepted and verdict.facts is None
    assert verdict.diagnostics[0].message.endswith("so a run may execute 33 instructions "
                                                   "(limit 32)")


def test_million_trip_loop_is_accepted_within_the_default_limit() -> None:
    text = "r0 = 0\nr1 = 0\nloop:\nr0 += r1\nr1 += 1\nif r1 < 1000000 goto loop\nexit\n"
    verdict = verify(assemble(text, "m.s"), helpers=HELPERS)
    assert verdict.accepted and verdict.facts is not None
    assert verdict.facts.max_insns == 3_000_003


# Loops ranked by a 32-bit view, a copy taken before the step, from an unknown start,
# or by a stack slot: name -> (source, inputs (8-byte buffers); the largest run
# executes exactly the bound claimed)
WORST = {
    "jmp32-test-on-64-bit-counter": (
        "r0 = 0\nr1 = *(u64 *)(r1 + 0)\nr2 = 100\nloop:\nr1 += 1\nif w1 < w2 goto loop\nexit\n",
        (0, 5, 99, 100, 0xFFFFFFFF, 0x1FFFFFFFF, 2**64 - 1)),
    "copy-before-step": (
        "r0 = 0\nr1 = *(u8 *)(r1 + 0)\nr2 = 100\nloop:\nr3 = r1\nr1 += 1\n"
        "if r3 < r2 goto loop\nexit\n", (0, 1, 99, 100, 255)),
    "count-up-from-unknown": (
        "r0 = 0\nr1 = *(u32 *)(r1 + 0)\nloop:\nr1 += 1\nif r1 < 100 goto loop\nexit\n",
        (0, 1, 99, 100, 0xFFFFFFFF)),
    "counter-on-stack": (
        "r0 = 0\nr6 = *(u64 *)(r1 + 0)\n*(u64 *)(r10 - 8) = r6\nloop:\n"
        "r1 = *(u32 *)(r10 - 8)\nr1 += 1\n*(u64 *)(r10 - 8) = r1\nif w1 < 100 goto loop\nexit\n",
        (0, 7, 100, 0xFFFFFFFF, 2**64 - 1)),
}


@pytest.mark.parametrize("name", WORST)
def test_bound_covers_every_start(name: str) -> None:
    text, starts = WORST[name]
    program = assemble(text, f"{name}.s")
    verdict = verify(program, ctx_size=8, helpers=HELPERS)
    assert verdict.accepted, verdict.summary()
    claimed = verdict.stats["max_insns"]
    steps = []
    for start in starts:
        vm = Interpreter(program, HELPERS)
        vm.run(bytearray(start.to_bytes(8, "little")))
        steps.append(vm.steps)
    assert max(steps) <= claimed
    assert max(steps) == claimed, (steps, claimed)


@st.composite
def counted_loop(draw: st.DrawFn) -> str:
    """A loop whose counter starts from the input or a constant, steps in a
    register or a stack slot by 32 or 64 bits, and is tested by 32 or 64
    bits, signed or not, directly or through a copy taken before the step."""
    start = draw(st.sampled_from(["r6 = *(u64 *)(r1 + 0)", "r6 = *(u32 *)(r1 + 0)",
                                  "r6 = *(u8 *)(r1 + 0)", "r6 = 0", "r6 = -3"]))
    step = draw(st.sampled_from(["r6 += 1", "r6 += 3", "w6 += 1", "r6 -= 1", "w6 -= 2"]))
    op = draw(st.sampled_from(["<", "<=", ">", "s<", "s>", "!="]))
    wide = draw(st.sampled_from(["r", "w"]))
    bound = draw(st.sampled_from([0, 5, 40, -7]))
    copy = draw(st.booleans())
    on_stack = draw(st.sampled_from(["", "64", "32"]))
    lines = ["r0 = 0", start]
    if on_stack:
        size = "u64" if on_stack == "64" else "u32"
        lines += [f"*({size} *)(r10 - 8) = r6", "loop:", f"r6 = *({size} *)(r10 - 8)"]
    else:
        lines += ["loop:"]
    tested = "r7" if copy else "r6"
    if copy:
        lines.append("r7 = r6")
    lines.append(step)
    if on_stack:
        size = "u64" if on_stack == "64" else "u32"
        lines.append(f"*({size} *)(r10 - 8) = r6")
    lines += [f"if {wide}{tested[1:]} {op} {bound} goto loop", "exit"]
    return "\n".join(lines) + "\n"


@given(counted_loop(), st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_loop_bound_covers_drawn_runs(text: str, starts: list[int]) -> None:
    program = assemble(text, "drawn.s")
    verdict = verify(program, ctx_size=8, helpers=HELPERS)
    if not verdict.accepted:
        return
    claimed = verdict.stats["max_insns"]
    edge = [0, 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1]
    for start in starts + edge:
        vm = Interpreter(program, HELPERS, budget=claimed + 1)
        vm.run(bytearray(start.to_bytes(8, "little")))
        assert vm.steps <= claimed, (text, start, claimed)
