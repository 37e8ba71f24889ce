"""Interpreter vs JIT on every execution corpus: identical r0, memory, maps and trace.

Corpora: the BPF conformance vectors (skipped with a reason when
``../shared/conformance`` is absent), the verifier's accepted cases, every
program in ``programs/`` on drawn contexts, and programs drawn by
hypothesis (straight-line code with forward branches over every ALU
operation, stack, context and atomic accesses, helper calls).  Pointers
differ between engines by design (the interpreter's addresses are
synthetic), so pointer fields of contexts are compared as offsets into
their object.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfvm import isa
from bpfvm.assembler import assemble
from bpfvm.errors import BpfvmError, VmFault
from bpfvm.hooks import HOOKS
from bpfvm.hookspec import HookSpec
from bpfvm.insn import Insn, lddw
from bpfvm.interp import Interpreter
from bpfvm.jit import Jit
from bpfvm.program import Program
from bpfvm.stdhelpers import conformance_helpers, standard_helpers
from bpfvm.vmenv import VmEnv

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
PROGRAMS = sorted((ROOT / "programs").glob("*.s"))
REGION_SIZE = 64 * 1024
BUDGET = 100_000  # runs the interpreter cannot finish within this are not compared
M64 = (1 << 64) - 1


def observe(engine: Any, ctx: bytes, hook: HookSpec | None = None,
            objects: dict[str, int] | None = None) -> dict[str, Any]:
    """Run once on a copy of ``ctx`` and return what the run shows."""
    mem = bytearray(ctx)
    regions = {name: bytearray(size) for name, size in (objects or {}).items()}
    bases = {name: engine.address_of(buf) for name, buf in regions.items()}
    pointer_fields = [f for f in (hook.fields if hook else ()) if f.pointer]
    for f in pointer_fields:
        mem[f.offset:f.offset + 8] = bases[f.pointer].to_bytes(8, "little")
        size_field = next((g for g in hook.fields if g.name == f"{f.name}_size"), None)
        if size_field is not None:
            size = len(regions[f.pointer]).to_bytes(size_field.size, "little")
            mem[size_field.offset:size_field.offset + size_field.size] = size
    try:
        r0: Any = engine.run(mem)
    except VmFault as fault:
        r0 = ("fault", fault.pc, fault.message.split(" at ")[0])
    if hook is not None and hook.returns_pointer and isinstance(r0, int) and r0:
        r0 = ("pointer", r0 - bases[hook.returns_pointer])
    for f in pointer_fields:
        mem[f.offset:f.offset + 8] = bytes(8)
    return {"r0": r0, "mem": bytes(mem), "regions": {n: bytes(b) for n, b in regions.items()},
            "maps": [sorted(m.items()) for m in engine.maps], "trace": list(engine.env.trace)}


def both(program: Program, ctx: bytes, *, helpers: Any = None, hook: HookSpec | None = None,
         objects: dict[str, int] | None = None, checked: bool = False) -> tuple[dict, dict]:
    helpers = helpers or standard_helpers()
    interp = Interpreter(program, helpers, env=VmEnv(seed=7), budget=BUDGET)
    expected = observe(interp, ctx, hook, objects)
    if finished_early(expected):  # the checked JIT must then run out of budget at the same pc
        checked = True
    jit = Jit(program, helpers, env=VmEnv(seed=7), checked=checked, budget=BUDGET)
    return expected, observe(jit, ctx, hook, objects)


def finished_early(outcome: dict[str, Any]) -> bool:
    """True when the interpreter gave up on a long (verified, hence finite) run."""
    r0 = outcome["r0"]
    return isinstance(r0, tuple) and r0[0] == "fault" and "budget" in r0[2]


# -- conformance vectors -----------------------------------------------------------

def vectors() -> list[Path]:
    return sorted((CONFORMANCE / "tests").glob("*.data")) if CONFORMANCE.is_dir() else []


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason=f"{CONFORMANCE} is absent")
@pytest.mark.parametrize("path", vectors(), ids=lambda p: p.stem)
def test_conformance_vector(path: Path) -> None:
    from bpfvm.conformance import load_vector, program_of

    vector = load_vector(path)
    expected, actual = both(program_of(vector), bytes(vector.mem),
                            helpers=conformance_helpers())
    assert actual == expected
    assert expected["r0"] == vector.result


# -- the verifier's accepted cases ----------------------------------------------------

def verifier_cases() -> list[Any]:
    try:
        from test_verifier_corpus import CASES
    except ImportError:  # the corpus module is not there (yet)
        return []
    return [c for c in CASES if c.meta.get("expect") == "accept"]


@pytest.mark.parametrize("case", verifier_cases(), ids=lambda c: c.name)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_verifier_accepted_case(case: Any, data: st.DataObject) -> None:
    from test_verifier_corpus import HOOKS as TEST_HOOKS
    from test_verifier_corpus import OBJECTS

    program = assemble(case.source, f"{case.file}[{case.name}]")
    hook = TEST_HOOKS.get(case.meta.get("hook", ""))
    size = hook.ctx_size if hook else int(case.meta.get("ctx", "0"))
    ctx = data.draw(st.binary(min_size=size, max_size=size))
    objects = {name: OBJECTS[name] for name in hook.objects} if hook else None
    expected, actual = both(program, ctx, hook=hook, objects=objects)
    assert actual == expected


def test_the_verifier_corpus_is_found() -> None:
    assert verifier_cases() or not (ROOT / "tests" / "test_verifier_corpus.py").exists()


# -- programs/ ----------------------------------------------------------------------

@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_policy_program(path: Path, data: st.DataObject) -> None:
    try:
        program = assemble(path.read_text(), str(path))
    except BpfvmError as exc:  # the assembler's tests report this
        pytest.skip(f"{path.name} does not assemble: {str(exc).splitlines()[0]}")
    hook = HOOKS[program.hook] if program.hook else None
    size = hook.ctx_size if hook else 64
    ctx = data.draw(st.binary(min_size=size, max_size=size))
    objects = {name: REGION_SIZE for name in hook.objects} if hook else None
    expected, actual = both(program, ctx, hook=hook, objects=objects)
    assert actual == expected


def test_programs_are_found() -> None:
    assert PROGRAMS


# -- drawn programs ----------------------------------------------------------------------

WORK = (0, 2, 3, 4, 5, 6, 7, 8, 9)  # r1 (the context) and r10 stay untouched
CTX = 64 + 8 * len(WORK)  # 64 bytes the program may use, then the registers at exit
ALU = [s for s in isa.TABLE if s.kind in (isa.Kind.ALU, isa.Kind.MOV, isa.Kind.NEG,
                                         isa.Kind.MOVSX, isa.Kind.END)]
JUMPS = [s for s in isa.TABLE if s.kind is isa.Kind.JCOND]
LOADS = [s for s in isa.TABLE if s.kind is isa.Kind.LDX]
STORES = [s for s in isa.TABLE if s.kind in (isa.Kind.ST, isa.Kind.STX)]
ATOMICS = [s for s in isa.TABLE if s.kind is isa.Kind.ATOMIC]
imm32 = st.one_of(st.sampled_from([0, 1, -1, 31, 32, 63, 64, -2147483648, 2147483647]),
                  st.integers(-2**31, 2**31 - 1))


def _insn(spec: isa.OpSpec, **fields: int) -> Insn:
    values = {k: v for k, v in fields.items() if k in spec.uses}
    if spec.match:
        values[spec.match[0]] = spec.match[1]
    return Insn(spec.opcode, **values)


@st.composite
def memory_operand(draw: st.DrawFn, size: int) -> tuple[int, int]:
    """(base register, offset) of an in-bounds access to the context or the stack."""
    if draw(st.booleans()):
        return 1, draw(st.integers(0, (64 - size) // size)) * size
    return 10, -draw(st.integers(1, 512 // size)) * size


@st.composite
def instruction(draw: st.DrawFn, room: int) -> list[Insn]:
    kind = draw(st.sampled_from(["alu"] * 4 + ["jump", "load", "store", "atomic", "call"]))
    dst, src = draw(st.sampled_from(WORK)), draw(st.sampled_from(WORK))
    if kind == "alu":
        return [_insn(draw(st.sampled_from(ALU)), dst=dst, src=src, imm=draw(imm32))]
    if kind == "jump":
        spec = draw(st.sampled_from(JUMPS))
        return [_insn(spec, dst=dst, src=src, imm=draw(imm32), off=draw(st.integers(0, room)))]
    if kind == "call":
        return [Insn(0x85, imm=draw(st.sampled_from([5, 7])))]
    spec = draw(st.sampled_from({"load": LOADS, "store": STORES, "atomic": ATOMICS}[kind]))
    base, off = draw(memory_operand(spec.width))
    if kind == "load":
        return [_insn(spec, dst=dst, src=base, off=off)]
    if kind == "store":
        return [_insn(spec, dst=base, src=src, off=off, imm=draw(imm32))]
    return [_insn(spec, dst=base, src=src, off=off)]


@st.composite
def programs(draw: st.DrawFn) -> Program:
    code: list[Insn] = []
    for r in WORK:
        code += lddw(r, draw(st.integers(0, M64)))
    n = draw(st.integers(1, 30))
    body: list[Insn] = []
    for i in range(n):
        body += draw(instruction(n - i - 1))
    # jumps were drawn with offsets in instructions; keep them inside the body
    fixed = [i._replace(off=min(i.off, len(body) - k - 1)) if i.spec and i.spec.kind is
             isa.Kind.JCOND else i for k, i in enumerate(body)]
    epilogue = [Insn(0x7B, 1, r, 64 + 8 * k) for k, r in enumerate(WORK)] + [Insn(0x95)]
    return Program(code + fixed + epilogue)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), ctx=st.binary(min_size=CTX, max_size=CTX))
def test_drawn_program(program: Program, ctx: bytes) -> None:
    expected, actual = both(program, ctx)
    assert actual == expected
    assert not isinstance(expected["r0"], tuple)  # drawn programs never fault
    assert both(program, ctx, checked=True)[1] == expected


def test_drawn_programs_read_back_every_register() -> None:
    ctx = bytes(CTX)
    program = Program([*lddw(6, 0x1122334455667788), Insn(0x7B, 1, 6, 64 + 8 * WORK.index(6)),
                       Insn(0xB7, 0, imm=0), Insn(0x95)])
    _, actual = both(program, ctx)
    assert struct.unpack_from("<Q", actual["mem"], 64 + 8 * WORK.index(6))[0] == \
        0x1122334455667788
