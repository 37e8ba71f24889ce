"""The one execution-corpus runner: every corpus on the interpreter, the JIT and the checked JIT.

Expected-result corpora (``tests/data/interp``): the shared ALU/jump/atomic
rows of ``alu.toml`` and the hand-written programs of ``programs.toml``, each
checked against its expected r0, fault, memory, trace and maps on every
engine (the unchecked JIT only where the case needs no run-time check), and
the engines against each other.  Differential corpora: the BPF conformance
vectors (skipped with a reason when
``../shared/conformance`` is absent), the verifier's accepted cases, every
program in ``programs/`` on drawn contexts, and programs drawn by
hypothesis (straight-line code with forward branches over every ALU
operation, stack, context and atomic accesses, helper calls).  Pointers
differ between engines by design (the interpreter's addresses are
synthetic), so pointer fields of contexts are compared as offsets into
their object.
"""

from __future__ import annotations

import re
import struct
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfvm import isa
from bpfvm.asm.assembler import assemble
from bpfvm.asm.sections import split_sections
from bpfvm.errors import BpfvmError, VmFault
from bpfvm.hookspec import HookSpec
from bpfvm.interp.interpreter import Interpreter
from bpfvm.isa.insn import Insn, lddw
from bpfvm.jit.engine import Jit
from bpfvm.program import MapDef, Program
from bpfvm.stdhelpers import conformance_helpers, standard_helpers
from bpfvm.vmenv import VmEnv
from mmcore.hooks.specs import HOOKS
from tests.conftest import CONFORMANCE, DATA, ROOT

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
    if needs_checks(expected):  # the checked JIT must then fault in the same way
        checked = True
    jit = Jit(program, helpers, env=VmEnv(seed=7), checked=checked, budget=BUDGET)
    return expected, observe(jit, ctx, hook, objects)


def needs_checks(outcome: dict[str, Any]) -> bool:
    """True when the interpreter's run ended in a fault only run-time checks catch:
    a bad access, or the budget on a long (verified, hence finite) run."""
    r0 = outcome["r0"]
    return isinstance(r0, tuple) and r0[0] == "fault" and (
        "budget" in r0[2] or r0[2].startswith("invalid"))


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
        from tests.verifier.test_corpus import CASES
    except ImportError:  # the corpus module is not there (yet)
        return []
    return [c for c in CASES if c.meta.get("expect") == "accept"]


@pytest.mark.parametrize("case", verifier_cases(), ids=lambda c: c.name)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_verifier_accepted_case(case: Any, data: st.DataObject) -> None:
    from tests.verifier.test_corpus import HOOKS as TEST_HOOKS
    from tests.verifier.test_corpus import OBJECTS

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

def program_sections() -> list[Any]:
    """Every program of ``programs/``: one per ``.hook`` section of each file."""
    out = []
    for path in PROGRAMS:
        try:
            sections = split_sections(path.read_text(), str(path))
        except BpfvmError as exc:  # the assembler's tests report this
            out.append(pytest.param(None, id=path.stem, marks=pytest.mark.skip(
                reason=f"{path.name} does not assemble: {str(exc).splitlines()[0]}")))
            continue
        out += [pytest.param(p, id=f"{path.stem}:{p.hook}") for p in sections]
    return out


@pytest.mark.parametrize("program", program_sections())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_policy_program(program: Program, data: st.DataObject) -> None:
    hook = HOOKS[program.hook] if program.hook else None
    size = hook.ctx_size if hook else 64
    ctx = data.draw(st.binary(min_size=size, max_size=size))
    objects = {name: REGION_SIZE for name in hook.objects} if hook else None
    expected, actual = both(program, ctx, hook=hook, objects=objects)
    assert actual == expected


def test_programs_are_found() -> None:
    assert PROGRAMS


# -- drawn programs ----------------------------------------------------------------------

CTX_REG = 6  # holds the context pointer (r1 is needed for helper arguments)
WORK = (0, 2, 3, 4, 5, 7, 8, 9)
CTX = 64 + 8 * len(WORK)  # 64 bytes the program may use, then the registers at exit
MAPS = [MapDef("a", "array", 4, 16, 4), MapDef("h", "hash", 4, 8, 8)]
ALU = [s for s in isa.TABLE if s.kind in (isa.Kind.ALU, isa.Kind.MOV, isa.Kind.NEG,
                                         isa.Kind.MOVSX, isa.Kind.END)]
JUMPS = [s for s in isa.TABLE if s.kind is isa.Kind.JCOND]
LOADS = [s for s in isa.TABLE if s.kind is isa.Kind.LDX]
STORES = [s for s in isa.TABLE if s.kind in (isa.Kind.ST, isa.Kind.STX)]
ATOMICS = [s for s in isa.TABLE if s.kind is isa.Kind.ATOMIC]
CALL_F = Insn(0x85, src=isa.CALL_LOCAL, imm=0)  # imm is set once the layout is known
imm32 = st.one_of(st.sampled_from([0, 1, -1, 31, 32, 63, 64, -2147483648, 2147483647]),
                  st.integers(-2**31, 2**31 - 1))


def _insn(spec: isa.OpSpec, **fields: int) -> Insn:
    values = {k: v for k, v in fields.items() if k in spec.uses}
    if spec.match:
        values[spec.match[0]] = spec.match[1]
    return Insn(spec.opcode, **values)


@st.composite
def memory_operand(draw: st.DrawFn, size: int, ctx: bool = True) -> tuple[int, int]:
    """(base register, offset) of an in-bounds access to the context or the stack
    (the stack below 32 bytes, which map operations use)."""
    if ctx and draw(st.booleans()):
        return CTX_REG, draw(st.integers(0, (64 - size) // size)) * size
    return 10, -draw(st.integers(32 // size + 1, 512 // size)) * size


@st.composite
def map_operation(draw: st.DrawFn) -> list[Insn]:
    """Look up (and read or write the value) or update a key; no pointer survives."""
    index = draw(st.integers(0, 1))
    key, reg = draw(st.integers(0, 5)), draw(st.sampled_from((4, 5, 7, 8, 9)))
    code = [Insn(0x62, 10, 0, -4, key), *lddw(1, index, isa.PSEUDO_MAP_FD),
            Insn(0xBF, 2, 10), Insn(0x07, 2, imm=-4)]
    if draw(st.booleans()):  # update with the value at fp-16
        code += [Insn(0x7B, 10, reg, -16), Insn(0xBF, 3, 10), Insn(0x07, 3, imm=-16),
                 Insn(0xB7, 4, imm=draw(st.integers(0, 2))), Insn(0x85, imm=2),
                 Insn(0xB7, 3, imm=0)]
    else:
        off = draw(st.sampled_from([0, 8])) if index == 0 else 0
        access = Insn(0x79, reg, 0, off) if draw(st.booleans()) else Insn(0x7B, 0, reg, off)
        code += [Insn(0x85, imm=1), Insn(0x15, 0, 0, 1, 0), access, Insn(0xB7, 0, imm=0)]
    return code + [Insn(0xB7, 2, imm=0)]


@st.composite
def instruction(draw: st.DrawFn, room: int, callee: bool = False) -> list[Insn]:
    kinds = ["alu"] * 4 + ["jump", "load", "store", "atomic", "call"]
    if not callee:
        kinds += ["map", "local"]
    kind = draw(st.sampled_from(kinds))
    dst, src = draw(st.sampled_from(WORK)), draw(st.sampled_from(WORK))
    if kind == "alu":
        return [_insn(draw(st.sampled_from(ALU)), dst=dst, src=src, imm=draw(imm32))]
    if kind == "jump":
        spec = draw(st.sampled_from(JUMPS))
        return [_insn(spec, dst=dst, src=src, imm=draw(imm32), off=draw(st.integers(0, room)))]
    if kind == "call":
        return [Insn(0x85, imm=draw(st.sampled_from([5, 7])))]
    if kind == "map":
        return draw(map_operation())
    if kind == "local":
        return [CALL_F]
    spec = draw(st.sampled_from({"load": LOADS, "store": STORES, "atomic": ATOMICS}[kind]))
    base, off = draw(memory_operand(spec.width, ctx=not callee))
    if kind == "load":
        return [_insn(spec, dst=dst, src=base, off=off)]
    if kind == "store":
        return [_insn(spec, dst=base, src=src, off=off, imm=draw(imm32))]
    return [_insn(spec, dst=base, src=src, off=off)]


def body(draw: st.DrawFn, n: int, callee: bool,
         keep: Callable[[list[Insn]], bool] | None = None) -> list[Insn]:
    """``n`` drawn units (only those ``keep`` takes, when given); a jump
    skips whole units, never into one."""
    units = [draw(instruction(n - i - 1, callee) if keep is None
                  else instruction(n - i - 1, callee).filter(keep)) for i in range(n)]
    starts = [0]
    for unit in units:
        starts.append(starts[-1] + len(unit))
    body: list[Insn] = []
    for u, unit in enumerate(units):
        for insn in unit:
            if insn.spec and insn.spec.kind is isa.Kind.JCOND and len(unit) == 1:
                dest = starts[min(u + 1 + insn.off, n)]
                insn = insn._replace(off=dest - len(body) - 1)
            body.append(insn)
    return body


@st.composite
def programs(draw: st.DrawFn) -> Program:
    code: list[Insn] = [Insn(0xBF, CTX_REG, 1)]
    for r in WORK:
        code += lddw(r, draw(st.integers(0, M64)))
    code += body(draw, draw(st.integers(1, 30)), callee=False)
    code += [Insn(0x7B, CTX_REG, r, 64 + 8 * k) for k, r in enumerate(WORK)] + [Insn(0x95)]
    callee = body(draw, draw(st.integers(0, 8)), callee=True) + [Insn(0x95)]
    entry = len(code)
    code = [i._replace(imm=entry - pc - 1) if i == CALL_F else i for pc, i in enumerate(code)]
    return Program(code + callee, list(MAPS))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), ctx=st.binary(min_size=CTX, max_size=CTX))
def test_drawn_program(program: Program, ctx: bytes) -> None:
    expected, actual = both(program, ctx)
    assert actual == expected
    assert not isinstance(expected["r0"], tuple)  # drawn programs never fault
    assert both(program, ctx, checked=True)[1] == expected


def test_drawn_programs_read_back_every_register() -> None:
    program = Program([*lddw(7, 0x1122334455667788), Insn(0x7B, 1, 7, 64 + 8 * WORK.index(7)),
                       Insn(0xB7, 0, imm=0), Insn(0x95)])
    _, actual = both(program, bytes(CTX))
    assert struct.unpack_from("<Q", actual["mem"], 64 + 8 * WORK.index(7))[0] == \
        0x1122334455667788


# -- expected-result corpora: tests/data/interp ----------------------------------

ROWS = tomllib.loads((DATA / "interp" / "alu.toml").read_text())
CASES = tomllib.loads((DATA / "interp" / "programs.toml").read_text())["case"]
CASE_HELPERS = {"standard": standard_helpers, "conformance": conformance_helpers}
ADDRESS = re.compile(r"0x[0-9a-f]{9,}")  # object addresses differ between engines
ENGINES = ("interp", "jit", "jit-checked")


def num(text: str) -> int:
    return int(text, 0) & M64


def imm_of(value: int) -> int | None:
    """``value`` as a sign-extended immediate, or None if it does not fit."""
    imm = value - (1 << 64) if value >> 63 else value
    return imm if -(1 << 31) <= imm < (1 << 31) else None


def specs_for(conf: str) -> list[isa.OpSpec]:
    return [s for s in isa.TABLE if s.conf == conf and s.kind is not isa.Kind.LDDW]


def returning(text: str, reg: int) -> str:
    """``text`` (one final ``exit``) returning ``reg`` in r0."""
    return text if reg == 0 else text[:text.rindex("exit")] + f"mov %r0, %r{reg}\nexit\n"


def row_programs() -> list[tuple[str, str, int]]:
    """(id, conformance assembly, expected r0) for every row of alu.toml."""
    out: list[tuple[str, str, int]] = []
    for op, a, b, want in ROWS["binary"]:
        a, b, want = num(a), num(b), num(want)
        for spec in specs_for(op):
            if spec.src_reg:
                text = f"lddw %r0, {a:#x}\nlddw %r1, {b:#x}\n{op} %r0, %r1\nexit\n"
            elif (imm := imm_of(b)) is not None:
                text = f"lddw %r0, {a:#x}\n{op} %r0, {imm}\nexit\n"
            else:
                continue
            out.append((f"{spec.key}({a:#x},{b:#x})", text, want))
    for op, a, want in ROWS["unary"]:
        out.append((f"{op}({a})", f"lddw %r0, {num(a):#x}\n{op} %r0\nexit\n", num(want)))
    for op, src, want in ROWS["movsx"]:
        text = f"lddw %r1, {num(src):#x}\nlddw %r0, 0xdeadbeefdeadbeef\n{op} %r0, %r1\nexit\n"
        out.append((f"{op}({src})", text, num(want)))
    for op, a, b, taken in ROWS["jumps"]:
        a, b = num(a), num(b)
        for spec in specs_for(op):
            operand = "%r2" if spec.src_reg else imm_of(b)
            if operand is None:
                continue
            text = (f"lddw %r1, {a:#x}\nlddw %r2, {b:#x}\nmov %r0, 0\n"
                    f"{op} %r1, {operand}, +1\nexit\nmov %r0, 1\nexit\n")
            out.append((f"{spec.key}({a:#x},{b:#x})", text, int(taken)))
    for op, mem, src, r0, mem_after, src_after, r0_after in ROWS["atomics"]:
        text = (f"lddw %r3, {num(mem):#x}\nstxdw [%r10-8], %r3\nlddw %r2, {num(src):#x}\n"
                f"lddw %r0, {num(r0):#x}\n{op} [%r10-8], %r2\nldxdw %r4, [%r10-8]\nexit\n")
        for reg, want in ((4, mem_after), (2, src_after), (0, r0_after)):
            out.append((f"{op}({mem},{src},{r0})->r{reg}", returning(text, reg), num(want)))
    return out


ROW_PROGRAMS = row_programs()


def make(kind: str, program: Program, helpers: Any, budget: int = 100_000) -> Any:
    if kind == "interp":
        return Interpreter(program, helpers, budget=budget)
    return Jit(program, helpers, checked=kind == "jit-checked", budget=budget)


@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize(("text", "want"), [p[1:] for p in ROW_PROGRAMS],
                         ids=[p[0] for p in ROW_PROGRAMS])
def test_row_program(text: str, want: int, kind: str) -> None:
    program = assemble(text, "row.s", syntax="conformance")
    assert make(kind, program, standard_helpers()).run() == want


def build(case: dict[str, Any]) -> Program:
    return assemble(case["asm"], f"programs.toml[{case['name']}]",
                    syntax=case.get("syntax", "conformance"))


def outcome(engine: Any, case: dict[str, Any]) -> dict[str, Any]:
    """What a run shows: r0 or the fault, memory after, trace, map contents."""
    for name, entries in case.get("maps_before", {}).items():
        m = engine.maps[engine.program.map_index(name)]
        for key, value in entries:
            m.update(bytes.fromhex(key), bytes.fromhex(value))
    mem = None if case.get("no_mem") else bytearray.fromhex(case.get("mem", ""))
    try:
        result: Any = engine.run(mem)
    except VmFault as fault:
        result = ADDRESS.sub("ADDR", f"pc {fault.pc}: {fault.message}")
    maps = {m.name: sorted([k.hex(), v.hex()] for k, v in m.items()
                           if any(v) or m.kind == "hash") for m in engine.maps}
    return {"result": result, "mem": mem, "trace": list(engine.env.trace), "maps": maps}


def case_engine(case: dict[str, Any], kind: str) -> Any:
    helpers = CASE_HELPERS[case.get("helpers", "standard")]()
    return make(kind, build(case), helpers, case.get("budget", 100_000))


def case_needs_checks(case: dict[str, Any]) -> bool:
    """True when the case relies on run-time checks (memory faults, the budget)."""
    if "fault" not in case:
        return False
    message = outcome(case_engine(case, "interp"), case)["result"]
    return "invalid" in message or "budget" in message


CASE_RUNS = [(c, k) for c in CASES for k in ENGINES if not (k == "jit" and case_needs_checks(c))]


@pytest.mark.parametrize(("case", "kind"), CASE_RUNS,
                         ids=[f"{c['name']}-{k}" for c, k in CASE_RUNS])
def test_program_case(case: dict[str, Any], kind: str) -> None:
    got = outcome(case_engine(case, kind), case)
    if "fault" in case:
        assert isinstance(got["result"], str)
        assert ADDRESS.sub("ADDR", case["fault"]) in got["result"]
    else:
        assert got["result"] == case["result"] & M64
    if "mem_after" in case:
        assert got["mem"] == bytearray.fromhex(case["mem_after"])
    if "trace" in case:
        assert got["trace"] == case["trace"]
    for name, entries in case.get("maps_after", {}).items():
        assert got["maps"][name] == sorted(entries)
    if kind != "interp":
        assert got == outcome(case_engine(case, "interp"), case)


def test_every_case_runs_on_the_checked_engines() -> None:
    assert {k for _, k in CASE_RUNS} == set(ENGINES)
    assert sum(1 for _, k in CASE_RUNS if k == "jit-checked") == len(CASES)


def test_the_corpora_execute_every_opcode_of_the_table() -> None:
    covered = set()
    for _, text, _ in ROW_PROGRAMS:
        covered |= {i.spec.key for i in assemble(text, "row.s", syntax="conformance").insns
                    if i.spec}
    for case in CASES:
        covered |= {i.spec.key for i in build(case).insns if i.spec}
    missing = sorted(s.key for s in isa.TABLE if s.key not in covered)
    assert not missing
