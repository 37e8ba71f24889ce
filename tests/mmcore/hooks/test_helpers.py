"""MM helper records: known to every tool, answered only by an MM host."""

from __future__ import annotations

import pytest

from bpfvm.asm.assembler import AsmErrors, assemble
from bpfvm.errors import VmFault
from bpfvm.interp.interpreter import Interpreter
from bpfvm.vmenv import VmEnv
from mmcore.hooks.helpers import MM_HELPER_SPECS, policy_helpers

PROG = "r1 = 1\nr2 = 9\ncall mm_free_blocks\nexit\n"


class Host(VmEnv):
    """A stand-in host answering one MM helper."""

    def mm_free_blocks(self, node: int, order: int) -> int:
        return node * 100 + order


def test_records_are_in_the_default_tables_with_ids_from_1000() -> None:
    table = policy_helpers()
    for spec in MM_HELPER_SPECS:
        assert spec.id >= 1000 and table.by_name(spec.name) is spec
    assert table.by_name("map_lookup_elem") is not None


def test_assembler_resolves_the_names_from_the_table_it_is_given() -> None:
    program = assemble(PROG, helpers=policy_helpers())
    assert program.insns[2].imm == policy_helpers().by_name("mm_free_blocks").id
    with pytest.raises(AsmErrors, match="unknown helper 'mm_free_blocks'"):
        assemble(PROG)  # bpfvm's own table knows no MM helper


def test_the_host_environment_answers() -> None:
    vm = Interpreter(assemble(PROG, helpers=policy_helpers()), policy_helpers(), env=Host())
    assert vm.run() == 109


def test_without_an_mm_host_the_call_faults_cleanly() -> None:
    vm = Interpreter(assemble(PROG, helpers=policy_helpers()), policy_helpers())
    with pytest.raises(VmFault, match="mm_free_blocks needs the MM core's host environment"):
        vm.run()
