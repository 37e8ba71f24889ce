"""Lowering: every spec of the ISA table has one, and the interpreter's program corpus
(tests/data/interp/programs.toml) gives the same results on compiled code.

Cases whose interpreter run ends in a memory or budget fault are run checked
only (unchecked code trusts the verifier, and these programs would not pass it).
"""

from __future__ import annotations

import pytest

from bpfvm import isa
from bpfvm.errors import BytecodeError, VmFault
from bpfvm.isa.insn import Insn, lddw
from bpfvm.jit.engine import Jit
from bpfvm.jit.lower import LOWER, lowering_of
from bpfvm.program import MapDef, Program
from bpfvm.stdhelpers import standard_helpers


@pytest.mark.parametrize("spec", isa.TABLE, ids=[s.key for s in isa.TABLE])
def test_every_spec_of_the_table_has_a_lowering(spec: isa.OpSpec) -> None:
    assert lowering_of(spec) is not None


def test_every_kind_has_a_lowering_function() -> None:
    assert set(LOWER) == set(isa.Kind)


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
