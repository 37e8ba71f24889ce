"""Compiling and caching: one compilation per (bytes, hook, layout), optimized native code."""

from __future__ import annotations

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.isa.insn import Insn
from bpfvm.jit.compile import BOUND_SLOTS, JitCache, default_cache
from bpfvm.jit.engine import Jit, make_layout
from bpfvm.maps import make_maps
from bpfvm.program import MapDef, Program
from bpfvm.stdhelpers import standard_helpers

EXIT = Insn(0x95)
PROGRAM = Program([Insn(0xB7, 0, imm=5), Insn(0x07, 0, imm=1), EXIT])


@pytest.fixture
def cache() -> JitCache:
    return JitCache(capacity=3)


def test_a_second_load_reuses_the_code(cache: JitCache) -> None:
    first = Jit(PROGRAM, standard_helpers(), cache=cache)
    second = Jit(Program(list(PROGRAM.insns)), standard_helpers(), cache=cache)
    assert second.compiled is first.compiled
    assert (cache.hits, cache.misses) == (1, 1)
    assert first.state_address != second.state_address
    assert (first.run(), second.run()) == (6, 6)


@pytest.mark.parametrize("change", ["hook", "maps", "checked", "bytes"])
def test_the_key_covers_bytes_hook_and_layout(cache: JitCache, change: str) -> None:
    base = Program(list(PROGRAM.insns))
    Jit(base, standard_helpers(), cache=cache)
    other = Program(list(PROGRAM.insns))
    checked = False
    if change == "hook":
        other.hook = "placement"
    elif change == "maps":
        other.maps = [MapDef("a", "array", 4, 8, 1)]
    elif change == "checked":
        checked = True
    else:
        other.insns[0] = Insn(0xB7, 0, imm=6)
    Jit(other, standard_helpers(), cache=cache, checked=checked)
    assert cache.misses == 2


def test_the_cache_keeps_the_most_recent_entries(cache: JitCache) -> None:
    programs = [Program([Insn(0xB7, 0, imm=k), EXIT]) for k in range(4)]
    engines = [Jit(p, standard_helpers(), cache=cache) for p in programs]
    assert len(cache) == 3
    assert [e.run() for e in engines] == [0, 1, 2, 3]  # evicted code lives while used
    Jit(programs[0], standard_helpers(), cache=cache)
    assert cache.misses == 5


def test_the_default_cache_is_shared() -> None:
    assert default_cache() is default_cache()
    assert Jit(PROGRAM, standard_helpers()).compiled is Jit(PROGRAM, standard_helpers()).compiled


def test_compiled_code_records_its_cost(cache: JitCache) -> None:
    compiled = Jit(PROGRAM, standard_helpers(), cache=cache).compiled
    assert compiled.seconds > 0 and compiled.ir_size > 3
    assert len(cache.bound) == BOUND_SLOTS and len(set(cache.bound)) == BOUND_SLOTS


def test_rows_are_handed_out_once() -> None:
    cache = JitCache()
    rows = [cache.acquire() for _ in range(BOUND_SLOTS)]
    assert sorted(rows) == list(range(BOUND_SLOTS)) and cache.acquire() is None
    cache.release(rows[0])
    assert cache.acquire() == rows[0]


def test_entry_points_are_shared_by_the_programs_of_a_cache(cache: JitCache) -> None:
    first = Jit(PROGRAM, standard_helpers(), cache=cache)
    other = Program([Insn(0xB7, 0, imm=7), Insn(0x95)])  # r0 = 7; exit
    second = Jit(other, standard_helpers(), cache=cache)
    calls = [first.bind(bytearray(8)), second.bind(bytearray(8))]
    assert first.compiled is not second.compiled and len(cache.free) == BOUND_SLOTS - 4
    assert calls[1]() == 7 and calls[0]() == first.run(bytearray(8))


def layout_of(program: Program, checked: bool = False):
    return make_layout(make_maps(program.maps), standard_helpers(), checked)


def test_arithmetic_on_constants_is_folded_away() -> None:
    text = default_cache().optimized_ir(PROGRAM, layout_of(PROGRAM))
    assert "ret i64 6" in text


def test_division_guards_vanish_for_a_constant_divisor() -> None:
    p = assemble("r0 = *(u64 *)(r1 + 0)\nr0 /= 7\nexit\n", "d.s")
    text = default_cache().optimized_ir(p, layout_of(p))
    assert "select" not in text and "icmp" not in text


def test_unchecked_code_has_no_checks_and_checked_code_has() -> None:
    p = assemble("r0 = *(u64 *)(r1 + 0)\nexit\n", "l.s")
    unchecked = default_cache().optimized_ir(p, layout_of(p))
    checked = default_cache().optimized_ir(p, layout_of(p, checked=True))
    assert "bpf_valid" not in unchecked and "icmp" not in unchecked
    assert "icmp" in checked


def test_an_array_lookup_with_a_constant_handle_is_a_bounds_test() -> None:
    text = (".map a array key=4 value=8 entries=4\nr1 = map[a] ll\nr2 = r10\nr2 += -4\n"
            "*(u32 *)(r10 - 4) = 0\nr3 = *(u32 *)(r1 + 0)\ncall 1\nexit\n")
    p = assemble(text.replace("r3 = *(u32 *)(r1 + 0)\n", ""), "a.s")
    ir = default_cache().optimized_ir(p, layout_of(p))
    assert "switch" not in ir and "call" not in ir.split("define", 2)[1]


def test_assembly_is_native_code() -> None:
    asm = default_cache().assembly(PROGRAM, layout_of(PROGRAM))
    assert "bpf_main" in asm and "ret" in asm


def test_a_native_entry_runs_the_program_on_its_buffer(cache: JitCache) -> None:
    import ctypes

    load8 = Program([Insn(0x79, 0, 1, 0, 0), Insn(0x07, 0, imm=1), EXIT])  # r0 = *(u64*)r1 + 1
    jit = Jit(load8, standard_helpers(), cache=cache)
    buf = bytearray(8)
    entry = jit.native_entry(buf)
    assert entry in cache.bound and jit.native_entry(buf) == entry  # one row per buffer
    fn = ctypes.CFUNCTYPE(ctypes.c_uint64)(entry)
    buf[0] = 41
    assert fn() == 42 == jit.bind(buf)()
    other = bytearray(8)
    assert jit.native_entry(other) not in (None, entry)


def test_no_native_entry_once_every_row_is_taken() -> None:
    cache = JitCache()
    jit = Jit(PROGRAM, standard_helpers(), cache=cache)
    while cache.acquire() is not None:
        pass
    buf = bytearray(8)
    assert jit.native_entry(buf) is None and jit.bind(buf)() == 6  # the slower call serves
