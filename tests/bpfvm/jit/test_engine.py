"""The Jit engine: the interpreter's contract, helper callbacks, the zero-argument fast path."""

from __future__ import annotations

import ctypes
import gc
from typing import Any

import pytest

from bpfvm import isa
from bpfvm.asm.assembler import assemble
from bpfvm.engine import FAULT, ProgramFault
from bpfvm.errors import BpfvmError, BytecodeErrors, VmFault
from bpfvm.helpers import Arg, HelperSpec, Ret
from bpfvm.isa.insn import Insn, lddw
from bpfvm.jit.compile import JitCache
from bpfvm.jit.engine import BOUND_SLOTS, Jit
from bpfvm.load import make_engine
from bpfvm.maps import make_maps
from bpfvm.program import MapDef, Program
from bpfvm.stdhelpers import standard_helpers

EXIT = Insn(0x95)
R0_IS_R1 = Program([Insn(0xBF, 0, 1), EXIT])
FIRST_BYTE = Program([Insn(0x71, 0, 1, 0), EXIT])  # r0 = *(u8 *)r1


def helper_table(*extra: HelperSpec) -> Any:
    return standard_helpers().extended(extra)


def test_the_loader_builds_a_jit() -> None:
    engine = make_engine(FIRST_BYTE, "jit", standard_helpers())
    assert isinstance(engine, Jit) and engine.run(b"\x09") == 9


def test_run_passes_mem_and_its_length() -> None:
    r0_is_r2 = Program([Insn(0xBF, 0, 2), EXIT])
    jit = Jit(r0_is_r2, standard_helpers())
    assert (jit.run(None), jit.run(bytearray(5)), jit.run(b"")) == (0, 5, 0)
    assert Jit(R0_IS_R1, standard_helpers()).run(None) == 0


@pytest.mark.parametrize("size", [1, 4096, 4097, 100_000])
def test_mem_of_any_size_is_modified_in_place(size: int) -> None:
    # the last byte += 1; r0 = the length
    jit = Jit(assemble("r3 = r1\nr3 += r2\nr4 = *(u8 *)(r3 - 1)\nr4 += 1\n"
                       "*(u8 *)(r3 - 1) = r4\nr0 = r2\nexit\n", "m.s"), standard_helpers())
    mem = bytearray(size)
    assert jit.run(mem) == size and jit.run(mem) == size
    assert mem[-1] == 2 and not any(mem[:-1])


def test_mem_is_modified_in_place_and_bytes_are_copied() -> None:
    jit = Jit(Program([Insn(0x72, 1, 0, 1, 0x5A), Insn(0xB7, 0, imm=0), EXIT]),
              standard_helpers())
    mem = bytearray(2)
    jit.run(mem)
    assert mem == b"\x00\x5a"
    assert jit.run(b"\x01\x02") == 0  # read-only input: a private copy is written


def test_address_of_makes_a_host_buffer_reachable() -> None:
    # r0 = *(u32 *)(*(u64 *)(r1 + 0) + 4)
    jit = Jit(Program([Insn(0x79, 2, 1, 0), Insn(0x61, 0, 2, 4), EXIT]), standard_helpers())
    region = bytearray(b"\0\0\0\0\x2a\0\0\0")
    addr = jit.address_of(region)
    assert jit.address_of(region) == addr
    ctx = bytearray(addr.to_bytes(8, "little"))
    assert jit.run(ctx) == 42
    region[4] = 43
    assert jit.run(ctx) == 43


def test_mem_that_is_also_an_addressable_buffer_is_one_object() -> None:
    # *(u8 *)(r1 + 0) = 1, then *(u8 *)(pointer in ctx + 0) = 2: the same byte
    jit = Jit(assemble("*(u8 *)(r1 + 0) = 1\nr2 = *(u64 *)(r1 + 8)\n*(u8 *)(r2 + 0) = 2\n"
                       "r0 = *(u8 *)(r1 + 0)\nexit\n", "a.s"), standard_helpers())
    mem = bytearray(16)
    mem[8:16] = jit.address_of(mem).to_bytes(8, "little")
    assert jit.run(mem) == 2 and mem[0] == 2


def test_bind_gives_a_zero_argument_native_call() -> None:
    jit = Jit(FIRST_BYTE, standard_helpers())
    ctx = bytearray(b"\x07")
    call = jit.bind(ctx)
    assert call() == 7
    ctx[0] = 8
    assert call() == 8


def test_a_bound_call_signals_a_fault_and_check_raises_it() -> None:
    jit = Jit(Program([Insn(0x8D, 1), EXIT]), standard_helpers())  # callx r1
    call = jit.bind(bytearray(8))
    assert call() == FAULT
    with pytest.raises(VmFault, match="callx to unknown helper"):
        jit.check()
    jit.check()  # the fault was consumed


def test_bound_rows_run_out_gracefully_and_come_back() -> None:
    cache = JitCache()
    jit = Jit(FIRST_BYTE, standard_helpers(), cache=cache)
    calls = [jit.bind(bytearray([k])) for k in range(BOUND_SLOTS + 2)]
    assert [c() for c in calls] == list(range(BOUND_SLOTS + 2))
    assert cache.free == []
    del jit, calls
    gc.collect()
    again = Jit(FIRST_BYTE, standard_helpers(), cache=cache)
    assert len(cache.free) == BOUND_SLOTS - 1  # one row serves run()
    assert again.run(bytearray([9])) == 9


def test_binding_one_buffer_again_takes_no_new_row() -> None:
    """A hook point attaching the same engine again and again (detach, attach)
    binds its one buffer each time: the rows must not run out."""
    cache = JitCache()
    jit = Jit(FIRST_BYTE, standard_helpers(), cache=cache)
    ctx = bytearray(b"\x05")
    first = jit.bind(ctx)
    free = len(cache.free)
    for _ in range(2 * BOUND_SLOTS):
        assert jit.bind(ctx)() == 5
    assert len(cache.free) == free and jit.bind(ctx) is first
    other = jit.bind(bytearray(b"\x06"))  # another buffer: its own row
    assert other() == 6 and len(cache.free) == free - 1


def test_entry_address_is_a_c_function_of_state_and_memory() -> None:
    jit = Jit(FIRST_BYTE, standard_helpers())
    fn = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64,
                          ctypes.c_uint64)(jit.entry_address)
    buf = bytearray(b"\x11")
    assert fn(jit.state_address, jit.address_of(buf), 1) == 0x11


def test_helpers_run_in_python_with_the_engine_as_vm() -> None:
    seen: list[int] = []

    def probe(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        seen.append(vm.pc)
        return int.from_bytes(vm.read(r1, 2), "little") + r2

    program = Program([Insn(0xB7, 2, imm=100), Insn(0x85, imm=1000), EXIT])
    jit = Jit(program, helper_table(HelperSpec(1000, "probe", (), Ret.SCALAR, probe)))
    assert jit.run(bytearray(b"\x01\x02")) == 0x0201 + 100
    assert seen == [1]


def test_trace_printk_reaches_the_trace() -> None:
    text = ('r1 = 0x0a6425 ll\n*(u64 *)(r10 - 8) = r1\nr1 = r10\nr1 += -8\nr2 = 8\n'
            'r3 = 42\ncall 6\nr0 = 0\nexit\n')
    jit = Jit(assemble(text, "t.s"), standard_helpers())
    assert jit.run() == 0 and jit.env.trace == ["42"]


def test_a_failing_helper_becomes_a_fault() -> None:
    def boom(vm: Any, *args: int) -> int:
        raise ZeroDivisionError("bad")

    jit = Jit(Program([Insn(0xB7, 0, imm=0), Insn(0x85, imm=1000), EXIT]),
              helper_table(HelperSpec(1000, "boom", (), Ret.SCALAR, boom)))
    for _ in range(2):  # the engine stays usable after the fault
        with pytest.raises(VmFault, match="pc 1: helper boom failed: ZeroDivisionError: bad"):
            jit.run()


def test_a_helper_reading_outside_any_object_faults_at_the_call() -> None:
    text = "r1 = 0\nr2 = 8\ncall 6\nexit\n"  # trace_printk(NULL, 8)
    with pytest.raises(VmFault, match=r"pc 2 \(t.s:3\): invalid read of 8 bytes at 0x0 \(null"):
        Jit(assemble(text, "t.s"), standard_helpers()).run()


def test_a_helper_without_implementation_faults() -> None:
    helpers = helper_table(HelperSpec(1001, "stub", (Arg.ANYTHING,), Ret.SCALAR))
    with pytest.raises(VmFault, match="pc 0: helper stub has no implementation"):
        Jit(Program([Insn(0x85, imm=1001), EXIT]), helpers).run()


def test_faults_name_the_source_line() -> None:
    p = assemble("r1 = 999\ncallx r1\nexit\n", "bad.s")
    with pytest.raises(ProgramFault) as info:
        Jit(p, standard_helpers()).run()
    assert str(info.value) == "pc 1 (bad.s:2): callx to unknown helper 999"
    assert info.value.exit_code == 1


def test_malformed_bytecode_is_rejected_at_construction() -> None:
    with pytest.raises(BytecodeErrors, match="pc 0: unknown opcode 0xff"):
        Jit(Program([Insn(0xFF), EXIT]), standard_helpers())


def test_given_maps_must_match_the_declarations() -> None:
    p = Program([EXIT], [MapDef("a", "array", 4, 8, 2)])
    with pytest.raises(BpfvmError, match="does not match"):
        Jit(p, standard_helpers(), maps=make_maps([MapDef("a", "array", 4, 8, 3)]))
    with pytest.raises(BpfvmError, match="declares 1 maps, 0 given"):
        Jit(p, standard_helpers(), maps=[])


def test_map_value_addresses_are_real_and_writable_by_the_host() -> None:
    defn = MapDef("a", "array", 4, 8, 2)
    jit = Jit(Program([*lddw(1, 0, isa.PSEUDO_MAP_VALUE), Insn(0x79, 0, 1, 8), EXIT], [defn]),
              standard_helpers())
    jit.write(jit.map_value_addr(jit.maps[0], 8), (99).to_bytes(8, "little"))
    assert jit.run() == 99
    assert jit.read(jit.map_value_addr(jit.maps[0], 8), 8) == (99).to_bytes(8, "little")
    with pytest.raises(VmFault, match="invalid write of 8 bytes"):
        jit.write(jit.map_value_addr(jit.maps[0], 12), bytes(8))


def test_budget_is_a_property_of_checked_runs() -> None:
    loop = Program([Insn(0x05, off=-1)])
    jit = Jit(loop, standard_helpers(), checked=True, budget=10)
    with pytest.raises(VmFault, match="pc 0: instruction budget of 10 exhausted"):
        jit.run()
    jit.budget = 20
    with pytest.raises(VmFault, match="budget of 20"):
        jit.run()
