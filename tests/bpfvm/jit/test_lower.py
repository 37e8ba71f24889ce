"""Lowering: every spec of the ISA table has one, and the interpreter's program corpus
(tests/data/interp/programs.toml) gives the same results on compiled code.

Cases whose interpreter run ends in a memory or budget fault are run checked
only (unchecked code trusts the verifier, and these programs would not pass it).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from bpfvm import isa
from bpfvm.asm.assembler import assemble
from bpfvm.errors import BytecodeError, VmFault
from bpfvm.interp.interpreter import Interpreter
from bpfvm.isa.insn import Insn, lddw
from bpfvm.jit.engine import Jit
from bpfvm.jit.lower import LOWER, lowering_of
from bpfvm.program import MapDef, Program
from bpfvm.stdhelpers import conformance_helpers, standard_helpers
from tests.conftest import DATA

CASES = tomllib.loads((DATA / "interp" / "programs.toml")
                      .read_text())["case"]
HELPERS = {"standard": standard_helpers, "conformance": conformance_helpers}
M64 = (1 << 64) - 1
ADDRESS = re.compile(r"0x[0-9a-f]{9,}")  # object addresses differ between engines


@pytest.mark.parametrize("spec", isa.TABLE, ids=[s.key for s in isa.TABLE])
def test_every_spec_of_the_table_has_a_lowering(spec: isa.OpSpec) -> None:
    assert lowering_of(spec) is not None


def test_every_kind_has_a_lowering_function() -> None:
    assert set(LOWER) == set(isa.Kind)


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
    maps = {m.name: sorted(m.items()) for m in engine.maps}
    return {"result": result, "mem": mem, "trace": engine.env.trace, "maps": maps}


def engines(case: dict[str, Any], checked: bool) -> tuple[Interpreter, Jit]:
    helpers = HELPERS[case.get("helpers", "standard")]()
    budget = case.get("budget", 100_000)
    program = build(case)
    return (Interpreter(program, helpers, budget=budget),
            Jit(program, helpers, checked=checked, budget=budget))


def unsafe(case: dict[str, Any]) -> bool:
    """True when the case relies on run-time checks (memory faults, the budget)."""
    if "fault" not in case:
        return False
    interp, _ = engines(case, checked=True)
    message = outcome(interp, case)["result"]
    return "invalid" in message or "budget" in message


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_case_checked(case: dict[str, Any]) -> None:
    interp, jit = engines(case, checked=True)
    expected = outcome(interp, case)
    assert outcome(jit, case) == expected
    if "result" in case:
        assert expected["result"] == case["result"] & M64


SAFE = [c for c in CASES if not unsafe(c)]


@pytest.mark.parametrize("case", SAFE, ids=[c["name"] for c in SAFE])
def test_corpus_case_unchecked(case: dict[str, Any]) -> None:
    interp, jit = engines(case, checked=False)
    assert outcome(jit, case) == outcome(interp, case)


def test_the_corpus_covers_every_spec() -> None:
    covered = {i.spec.key for case in CASES for i in build(case).insns if i.spec}
    missing = {s.key for s in isa.TABLE} - covered
    # arithmetic, jumps and atomics are covered operation by operation in test_jit_ops
    elsewhere = (isa.Kind.ALU, isa.Kind.MOV, isa.Kind.JCOND, isa.Kind.MOVSX, isa.Kind.END,
                 isa.Kind.NEG, isa.Kind.ATOMIC)
    assert {key for key in missing if isa.BY_KEY[key].kind not in elsewhere} == set()


def test_lddw_of_a_missing_map_is_rejected() -> None:
    p = Program([*lddw(1, 3, isa.PSEUDO_MAP_FD), Insn(0x95)])
    with pytest.raises(BytecodeError, match="pc 0: lddw refers to map 3"):
        Jit(p, standard_helpers())


def test_direct_value_access_needs_an_array_map() -> None:
    p = Program([*lddw(1, 0, isa.PSEUDO_MAP_VALUE), Insn(0x95)],
                [MapDef("h", "hash", 4, 4, 4)])
    with pytest.raises(BytecodeError, match="direct value access needs an array map"):
        Jit(p, standard_helpers())


def test_running_off_the_end_faults_at_the_end() -> None:
    with pytest.raises(VmFault, match="pc 1: ran off the end of the program"):
        Jit(Program([Insn(0xB7, 0, imm=1)]), standard_helpers()).run()
