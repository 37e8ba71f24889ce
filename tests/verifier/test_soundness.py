"""Property: programs the verifier accepts never fault in the interpreter,
the value ranges it claims hold at run time, and no run executes more
instructions than the claimed bound.

Programs are drawn at random (straight-line and branchy, forward jumps and
bounded loops, loads and stores into the input buffer and the stack, pointer
arithmetic with masked or compared indexes) and run on several inputs.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfvm.errors import VmFault
from bpfvm.interp.interpreter import Interpreter
from bpfvm.isa import BY_KEY
from bpfvm.isa.insn import Insn
from bpfvm.program import Program
from bpfvm.stdhelpers import standard_helpers
from verifier import verify

HELPERS = standard_helpers()
CTX = 16
SCRATCH = (0, 3, 4, 5, 6, 7)  # r1 (buffer), r2 (length), r10 (stack) keep their roles


def op(key: str, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:
    return Insn(BY_KEY[key].opcode, dst, src, off, imm)


regs = st.sampled_from(SCRATCH)
sizes = st.sampled_from(("b", "h", "w", "dw"))
SIZE = {"b": 1, "h": 2, "w": 4, "dw": 8}


@st.composite
def chunk(draw: st.DrawFn) -> list[Insn]:
    """A few instructions that are often, but not always, valid."""
    kind = draw(st.integers(0, 9))
    d, s = draw(regs), draw(regs)
    sz = draw(sizes)
    if kind == 0:
        return [op("mov64_k", d, imm=draw(st.integers(-20, 300)))]
    if kind == 1:
        name = draw(st.sampled_from(("add", "sub", "and", "or", "xor", "lsh", "rsh", "mul",
                                     "div", "mod", "arsh")))
        bits = draw(st.sampled_from(("64", "32")))
        if draw(st.booleans()):
            return [op(f"{name}{bits}_k", d, imm=draw(st.integers(-8, 70)))]
        return [op(f"{name}{bits}_x", d, s)]
    if kind == 2:  # load from the buffer at a constant offset
        return [op(f"ldx{sz}", d, 1, off=draw(st.integers(-2, CTX)))]
    if kind == 3:  # store to the buffer
        return [op(f"stx{sz}", 1, s, off=draw(st.integers(-2, CTX)))]
    if kind == 4:  # stack store then maybe load
        off = -draw(st.integers(1, 40))
        out = [op(f"st{sz}", 10, off=off, imm=draw(st.integers(0, 99)))]
        if draw(st.booleans()):
            out.append(op(f"ldx{draw(sizes)}", d, 10, off=-draw(st.integers(1, 40))))
        return out
    if kind == 5:  # masked index into the buffer
        mask = draw(st.sampled_from((3, 7, 15, 31)))
        return [op("mov64_x", 3, d), op("and64_k", 3, imm=mask), op("mov64_x", 4, 1),
                op("add64_x", 4, 3), op(f"ldx{sz}", d, 4, off=draw(st.integers(0, 8)))]
    if kind == 6:  # compared index into the buffer
        bound = draw(st.integers(0, CTX + 2))
        return [op("jgt64_k", d, off=3, imm=bound), op("mov64_x", 4, 1),
                op("add64_x", 4, d), op(f"ldx{sz}", 5, 4)]
    if kind == 7:  # forward branch over something, or to the next instruction
        cond = draw(st.sampled_from(("jeq", "jne", "jgt", "jsgt", "jlt", "jset", "jsle")))
        width = draw(st.sampled_from(("64", "32")))
        return [op(f"{cond}{width}_k", d, off=draw(st.integers(0, 1)),
                   imm=draw(st.integers(-3, 70))),
                op("mov64_k", s, imm=draw(st.integers(0, 9)))]
    if kind == 8:  # a bounded loop summing the buffer
        n = draw(st.integers(0, CTX + 1))
        return [op("mov64_k", 3, imm=0), op("mov64_x", 4, 1), op("add64_x", 4, 3),
                op("ldxb", 5, 4), op("add64_x", 0, 5), op("add64_k", 3, imm=1),
                op("jlt64_k", 3, off=-6, imm=n)]
    return [op("mov64_x", d, s)]


@st.composite
def programs(draw: st.DrawFn) -> list[Insn]:
    insns = [op("mov64_k", r, imm=0) for r in SCRATCH if draw(st.booleans())]
    for part in draw(st.lists(chunk(), min_size=1, max_size=8)):
        insns.extend(part)
    insns.append(op("mov64_k", 0, imm=0) if draw(st.booleans()) else op("mov64_x", 0, 0))
    insns.append(op("exit"))
    return insns


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.lists(st.binary(min_size=CTX, max_size=CTX), min_size=1, max_size=3))
def test_accepted_programs_never_fault(insns: list[Insn], inputs: list[bytes]) -> None:
    program = Program(insns)
    verdict = verify(program, ctx_size=CTX, helpers=HELPERS, budget=20_000)
    if not verdict.accepted:
        return
    facts = verdict.facts
    assert facts is not None
    problems: list[str] = []

    def on_step(pc: int, r: list[int]) -> None:
        msg = facts.check(pc, r)
        if msg:
            problems.append(msg)

    vm = Interpreter(program, HELPERS, on_step=on_step)
    for data in inputs:
        try:
            vm.run(bytearray(data))
        except VmFault as exc:  # pragma: no cover - a verifier bug
            raise AssertionError(f"accepted program faulted: {exc}\n{insns}") from None
        assert not problems, problems[:3]
        assert vm.steps <= facts.max_insns


def test_generator_yields_accepted_programs() -> None:
    """The property above is not vacuous: a fixed program of each shape passes."""
    insns = [op("mov64_k", 0, imm=0), *chunk_example(), op("exit")]
    assert verify(Program(insns), ctx_size=CTX, helpers=HELPERS).accepted


def chunk_example() -> list[Insn]:
    return [op("mov64_k", 3, imm=0), op("mov64_x", 4, 1), op("add64_x", 4, 3), op("ldxb", 5, 4),
            op("add64_x", 0, 5), op("add64_k", 3, imm=1), op("jlt64_k", 3, off=-6, imm=CTX)]
