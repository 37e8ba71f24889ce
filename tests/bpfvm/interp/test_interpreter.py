"""The interpreter on data: every opcode of the ISA table, each semantic rule, each fault."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfvm import isa
from bpfvm.asm.assembler import assemble
from bpfvm.engine import ProgramFault
from bpfvm.errors import BpfvmError, BytecodeError, BytecodeErrors, VmFault
from bpfvm.helpers import Arg, HelperSpec, Ret
from bpfvm.interp.interpreter import Interpreter
from bpfvm.isa import bits, semantics
from bpfvm.isa.insn import Insn, lddw
from bpfvm.maps import make_maps
from bpfvm.program import MapDef, Program
from bpfvm.stdhelpers import standard_helpers

M64 = bits.M64


# -- the engine API --------------------------------------------------------------

def prog(*slots: Insn | tuple[Insn, Insn], maps: list[MapDef] | None = None) -> Program:
    flat: list[Insn] = []
    for s in slots:
        flat.extend([s] if isinstance(s, Insn) else s)
    return Program(flat, maps or [])


EXIT = Insn(0x95)


def test_address_of_makes_a_host_buffer_reachable() -> None:
    # r0 = *(u32 *)(*(u64 *)(r1 + 0) + 4)
    p = prog(Insn(0x79, 2, 1, 0), Insn(0x61, 0, 2, 4), EXIT)
    vm = Interpreter(p, standard_helpers())
    region = bytearray(b"\0\0\0\0\x2a\0\0\0")
    addr = vm.address_of(region)
    assert vm.address_of(region) == addr
    ctx = bytearray(addr.to_bytes(8, "little"))
    assert vm.run(ctx) == 42
    region[4] = 43
    assert vm.run(ctx) == 43


def test_fault_names_the_source_line() -> None:
    p = assemble("mov %r0, 0\nldxw %r0, [%r0]\nexit\n", "bad.s", syntax="conformance")
    with pytest.raises(ProgramFault) as info:
        Interpreter(p, standard_helpers()).run()
    assert str(info.value).startswith("pc 1 (bad.s:2): invalid read of 4 bytes at 0x0")
    assert info.value.exit_code == 1


def test_a_failing_helper_becomes_a_fault() -> None:
    def boom(vm: Any, *args: int) -> int:
        raise ZeroDivisionError("bad")

    helpers = standard_helpers().extended([HelperSpec(1000, "boom", (), Ret.SCALAR, boom)])
    vm = Interpreter(prog(Insn(0x85, imm=1000), EXIT), helpers)
    with pytest.raises(VmFault, match="pc 0: helper boom failed: ZeroDivisionError: bad"):
        vm.run()


def test_a_helper_without_implementation_faults() -> None:
    helpers = standard_helpers().extended([HelperSpec(1001, "stub", (Arg.ANYTHING,),
                                                      Ret.SCALAR)])
    with pytest.raises(VmFault, match="helper stub has no implementation"):
        Interpreter(prog(Insn(0x85, imm=1001), EXIT), helpers).run()


def test_steps_and_registers() -> None:
    vm = Interpreter(prog(Insn(0xB7, 0, imm=3), Insn(0x07, 0, imm=4), EXIT),
                     standard_helpers())
    assert vm.run() == 7
    assert vm.steps == 3
    assert vm.registers[0] == 7 and vm.registers[10] != 0


def test_mem_is_replaced_on_each_run() -> None:
    vm = Interpreter(prog(Insn(0xBF, 0, 1), EXIT), standard_helpers())  # r0 = r1
    assert vm.run(None) == 0
    base = vm.run(bytearray(4))
    assert base != 0 and vm.run(b"\x01\x02") == base


def test_bytes_mem_is_accepted_read_only_copy() -> None:
    vm = Interpreter(prog(Insn(0x71, 0, 1, 1), EXIT), standard_helpers())
    assert vm.run(b"\x05\x06") == 6


def test_malformed_bytecode_is_rejected_at_construction() -> None:
    with pytest.raises(BytecodeErrors, match="pc 0: unknown opcode 0xff"):
        Interpreter(prog(Insn(0xFF), EXIT), standard_helpers())


def test_validated_skips_the_bytecode_check() -> None:
    bad = prog(Insn(0x85, 0, 0, 0, 99_999), EXIT)  # call to an unknown helper
    with pytest.raises(BytecodeErrors, match="unknown helper 99999"):
        Interpreter(bad, standard_helpers())
    good = prog(Insn(0xB7, 0, 0, 0, 7), EXIT)
    assert Interpreter(good, standard_helpers(), validated=True).run() == 7


def test_lddw_of_a_missing_map_is_rejected() -> None:
    p = prog(lddw(1, 3, isa.PSEUDO_MAP_FD), EXIT)
    with pytest.raises(BytecodeError, match="pc 0: lddw refers to map 3"):
        Interpreter(p, standard_helpers())


def test_direct_value_access_needs_an_array_map() -> None:
    p = prog(lddw(1, 0, isa.PSEUDO_MAP_VALUE), EXIT, maps=[MapDef("h", "hash", 4, 4, 4)])
    with pytest.raises(BytecodeError, match="direct value access needs an array map"):
        Interpreter(p, standard_helpers())


def test_given_maps_must_match_the_declarations() -> None:
    p = prog(EXIT, maps=[MapDef("a", "array", 4, 8, 2)])
    with pytest.raises(BpfvmError, match="does not match"):
        Interpreter(p, standard_helpers(), maps=make_maps([MapDef("a", "array", 4, 8, 3)]))
    with pytest.raises(BpfvmError, match="declares 1 maps, 0 given"):
        Interpreter(p, standard_helpers(), maps=[])


def test_shared_maps_are_seen_by_both_engines() -> None:
    defs = [MapDef("a", "array", 4, 8, 2)]
    maps = make_maps(defs)
    # *(u64 *)map_value[a] += 1 ; r0 = that
    p = prog(lddw(1, 0, isa.PSEUDO_MAP_VALUE), Insn(0x79, 0, 1, 0), Insn(0x07, 0, imm=1),
             Insn(0x7B, 1, 0, 0), EXIT, maps=defs)
    first = Interpreter(p, standard_helpers(), maps=maps)
    second = Interpreter(p, standard_helpers(), maps=maps)
    assert (first.run(), second.run(), first.run()) == (1, 2, 3)
    assert maps[0].lookup(b"\0\0\0\0") == (3).to_bytes(8, "little")


def test_budget_is_per_run_and_configurable() -> None:
    loop = prog(Insn(0x05, off=-1))
    vm = Interpreter(loop, standard_helpers(), budget=10)
    with pytest.raises(VmFault, match="instruction budget of 10 exhausted"):
        vm.run()
    vm.budget = 20
    with pytest.raises(VmFault, match="budget of 20"):
        vm.run()
    assert vm.steps == 20


def test_on_step_sees_every_instruction_before_it_runs() -> None:
    seen: list[tuple[int, int]] = []
    p = prog(Insn(0xB7, 0, imm=3), Insn(0x05, off=1), Insn(0xB7, 0, imm=9),
             Insn(0x07, 0, imm=4), EXIT)
    vm = Interpreter(p, standard_helpers(), on_step=lambda pc, r: seen.append((pc, r[0])))
    assert vm.run() == 7
    assert seen == [(0, 0), (1, 3), (3, 3), (4, 7)]


def test_released_buffers_become_unreachable() -> None:
    p = prog(Insn(0x79, 2, 1, 0), Insn(0x61, 0, 2, 0), EXIT)
    vm = Interpreter(p, standard_helpers())
    region = bytearray(8)
    ctx = bytearray(vm.address_of(region).to_bytes(8, "little"))
    assert vm.run(ctx) == 0
    vm.release(region)
    with pytest.raises(VmFault, match="no object at this address"):
        vm.run(ctx)
    assert vm.address_of(region) != int.from_bytes(ctx, "little")


def test_helper_results_are_masked_and_none_is_zero() -> None:
    helpers = standard_helpers().extended([
        HelperSpec(1002, "neg", (), Ret.SCALAR, lambda vm, *a: -1),
        HelperSpec(1003, "void", (), Ret.VOID, lambda vm, *a: None)])
    assert Interpreter(prog(Insn(0x85, imm=1002), EXIT), helpers).run() == M64
    assert Interpreter(prog(Insn(0xB7, 0, imm=5), Insn(0x85, imm=1003), EXIT),
                       helpers).run() == 0


def test_interpret_convenience() -> None:
    from bpfvm.interp.interpreter import interpret

    assert interpret(prog(Insn(0xB7, 0, imm=-2), EXIT)) == M64 - 1


# -- operand plumbing, against a model applying the semantics in order ------------

ARITH = [s for s in isa.TABLE if s.key in semantics.ALU]


def make_insn(spec: isa.OpSpec, dst: int, src: int, imm: int) -> Insn:
    fields = {"dst": dst, "src": src if spec.src_reg else 0,
              "imm": imm if "imm" in spec.uses else 0, "off": 0}
    if spec.match:
        fields[spec.match[0]] = spec.match[1]
    return Insn(spec.opcode, **fields)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, M64), min_size=10, max_size=10),
       st.lists(st.tuples(st.sampled_from(ARITH), st.integers(0, 9), st.integers(0, 9),
                          st.integers(-(1 << 31), (1 << 31) - 1)), max_size=30))
def test_straight_line_programs_match_the_semantics(init: list[int], ops: list) -> None:
    slots: list[Insn] = []
    for reg, value in enumerate(init):
        slots.extend(lddw(reg, value))
    model = list(init)
    for spec, dst, src, imm in ops:
        insn = make_insn(spec, dst, src, imm)
        slots.append(insn)
        b = model[src] if spec.src_reg else semantics.operand(insn.imm)
        model[dst] = semantics.ALU[spec.key](model[dst], b)
    vm = Interpreter(Program(slots + [EXIT]), standard_helpers())
    vm.run()
    assert vm.registers[:10] == model


def test_budget_exhaustion_names_the_source_line() -> None:
    program = assemble("r0 = 0\nloop:\nr0 += 1\ngoto loop\n", "spin.s")
    with pytest.raises(VmFault, match=r"^pc 2 \(spin.s:4\): instruction budget of 100 "):
        Interpreter(program, standard_helpers(), budget=100).run()


COUNT_TO_1000 = """
    r0 = 0
    r1 = 0
loop:
    r0 += 3
    r1 += 1
    if r1 < 1000 goto loop
    exit
"""


@pytest.mark.parametrize("first", [1, 7, 2000, 2999])
def test_resume_goes_on_where_the_budget_stopped_a_run(first: int) -> None:
    program = assemble(COUNT_TO_1000)
    whole = Interpreter(program, standard_helpers())
    expected, total = whole.run(), whole.steps
    vm = Interpreter(program, standard_helpers(), budget=first)
    with pytest.raises(VmFault, match=f"budget of {first} exhausted"):
        vm.run()
    assert vm.stopped and vm.steps == first
    assert vm.resume(total - first) == expected == 3000
    assert vm.steps == total and not vm.stopped


def test_resume_counts_the_whole_run_in_its_budget_message() -> None:
    vm = Interpreter(assemble(COUNT_TO_1000), standard_helpers(), budget=100)
    with pytest.raises(VmFault):
        vm.run()
    with pytest.raises(VmFault, match="budget of 150 exhausted"):
        vm.resume(50)
    assert vm.steps == 150 and vm.stopped


def test_resume_needs_a_run_stopped_by_its_budget() -> None:
    vm = Interpreter(assemble(COUNT_TO_1000), standard_helpers())
    with pytest.raises(BpfvmError, match="no run stopped"):
        vm.resume(10)
    vm.run()
    with pytest.raises(BpfvmError, match="no run stopped"):
        vm.resume(10)
