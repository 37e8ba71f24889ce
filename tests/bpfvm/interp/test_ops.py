"""Handler factories: one per kind, one handler per slot, traps where no code may go."""

from __future__ import annotations

import pytest

from bpfvm import isa
from bpfvm.errors import VmFault
from bpfvm.interp.interpreter import Interpreter
from bpfvm.interp.ops import FACTORIES, compile_handlers
from bpfvm.isa.insn import Insn, lddw
from bpfvm.program import Program
from bpfvm.stdhelpers import standard_helpers


def test_every_kind_has_a_factory() -> None:
    assert set(FACTORIES) == set(isa.Kind)


def test_one_handler_per_slot_plus_an_end_trap() -> None:
    p = Program([*lddw(0, 5), Insn(0x95)])
    vm = Interpreter(p, standard_helpers())
    handlers = compile_handlers(vm)
    assert len(handlers) == len(p.insns) + 1
    assert handlers[0]() == 2  # lddw skips its second slot
    assert vm._r[0] == 5
    with pytest.raises(VmFault, match="pc 1: jump into the middle of lddw"):
        handlers[1]()
    with pytest.raises(VmFault, match="pc 3: ran off the end of the program"):
        handlers[3]()


def test_handlers_return_the_next_pc() -> None:
    p = Program([Insn(0xB7, 0, imm=1), Insn(0x15, 0, off=2, imm=1), Insn(0x05, off=-3),
                 Insn(0x95), Insn(0x95)])
    handlers = compile_handlers(Interpreter(p, standard_helpers()))
    assert [h() for h in handlers[:3]] == [1, 4, 0]  # mov; jeq taken (r0 == 1); ja -3
