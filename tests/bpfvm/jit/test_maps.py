"""Native map_lookup_elem against the Python map API, on the same storage.

Hash maps of several key sizes (unrolled and looped hashing and comparison)
go through random updates and deletes (tombstones included); then every key
of the key space is looked up by compiled code, which must find exactly the
value offset :meth:`Map.find` finds.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfvm import isa
from bpfvm.errors import VmFault
from bpfvm.isa.insn import Insn, lddw
from bpfvm.jit.engine import Jit
from bpfvm.maps import DELETED, make_maps
from bpfvm.program import MapDef, Program
from bpfvm.stdhelpers import standard_helpers

EXIT = Insn(0x95)


def lookup_program(defn: MapDef) -> Program:
    """r0 = map_lookup_elem(map 0, key = the run's memory)."""
    return Program([Insn(0xBF, 2, 1), *lddw(1, 0, isa.PSEUDO_MAP_FD), Insn(0x85, imm=1), EXIT],
                   [defn])


def engine(defn: MapDef, checked: bool = False) -> Jit:
    return Jit(lookup_program(defn), standard_helpers(), checked=checked)


def expected(jit: Jit, key: bytes) -> int:
    m = jit.maps[0]
    off = m.find(key)
    return 0 if off is None else jit.map_value_addr(m, off)


@pytest.mark.parametrize("key_size", [1, 3, 4, 8, 12, 16, 65])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_hash_lookup_matches_the_map(key_size: int, data: st.DataObject) -> None:
    jit = engine(MapDef("h", "hash", key_size, 8, 16))
    m = jit.maps[0]
    space = [bytes([k]) * key_size for k in range(24)]
    for _ in range(data.draw(st.integers(0, 60))):
        key = data.draw(st.sampled_from(space))
        if data.draw(st.booleans()):
            m.update_errno(key, key[:1] * 8)
        else:
            m.delete_errno(key)
    for key in space:
        assert jit.run(bytearray(key)) == expected(jit, key)


@pytest.mark.parametrize("checked", [False, True])
def test_array_lookup_is_address_arithmetic(checked: bool) -> None:
    jit = engine(MapDef("a", "array", 4, 12, 5), checked)
    base = jit.map_value_addr(jit.maps[0], 0)
    for index in range(7):
        want = base + index * 16 if index < 5 else 0  # stride = value size rounded up to 8
        assert jit.run(bytearray(index.to_bytes(4, "little"))) == want


def test_a_table_without_empty_slots_is_probed_a_bounded_number_of_times() -> None:
    jit = engine(MapDef("h", "hash", 4, 4, 8))
    m = jit.maps[0]
    for slot in range(m.capacity):
        m.buf[slot * m.stride] = DELETED
    assert jit.run(bytearray(b"abcd")) == 0


def test_lookups_see_updates_made_by_the_program() -> None:
    # key = 7 on the stack; value = 42; update, then lookup, then read the value
    program = Program([
        Insn(0x62, 10, 0, -4, 7), Insn(0x7A, 10, 0, -16, 42),
        *lddw(1, 0, isa.PSEUDO_MAP_FD), Insn(0xBF, 2, 10), Insn(0x07, 2, imm=-4),
        Insn(0xBF, 3, 10), Insn(0x07, 3, imm=-16), Insn(0xB7, 4, imm=0), Insn(0x85, imm=2),
        *lddw(1, 0, isa.PSEUDO_MAP_FD), Insn(0xBF, 2, 10), Insn(0x07, 2, imm=-4),
        Insn(0x85, imm=1), Insn(0x15, 0, 0, 1, 0), Insn(0x79, 0, 0, 0), EXIT,
    ], [MapDef("h", "hash", 4, 8, 4)])
    jit = Jit(program, standard_helpers())
    assert jit.run() == 42
    assert jit.maps[0].lookup((7).to_bytes(4, "little")) == (42).to_bytes(8, "little")


def test_maps_are_shared_with_the_caller() -> None:
    defn = MapDef("a", "array", 4, 8, 2)
    maps = make_maps([defn])
    # *(u64 *)map_value[a] += 1
    program = Program([*lddw(1, 0, isa.PSEUDO_MAP_VALUE), Insn(0x79, 0, 1, 0),
                       Insn(0x07, 0, imm=1), Insn(0x7B, 1, 0, 0), EXIT], [defn])
    first = Jit(program, standard_helpers(), maps=maps)
    second = Jit(program, standard_helpers(), maps=maps)
    assert (first.run(), second.run(), first.run()) == (1, 2, 3)
    assert maps[0].lookup(bytes(4)) == (3).to_bytes(8, "little")


def test_a_value_that_is_not_a_map_handle_faults() -> None:
    program = Program([Insn(0xB7, 1, imm=5), Insn(0xBF, 2, 10), Insn(0x85, imm=1), EXIT],
                      [MapDef("a", "array", 4, 8, 2)])
    with pytest.raises(VmFault, match="pc 2: 0x5 is not a map handle"):
        Jit(program, standard_helpers()).run()


def test_map_handles_resolve_to_their_maps() -> None:
    defs = [MapDef("a", "array", 4, 8, 2), MapDef("b", "hash", 4, 8, 2)]
    jit = Jit(Program([*lddw(0, 1, isa.PSEUDO_MAP_FD), EXIT], defs), standard_helpers())
    handle = jit.run()
    assert jit.map_at(handle) is jit.maps[1]
    with pytest.raises(VmFault, match="is not a map handle"):
        jit.map_at(handle + 1)
