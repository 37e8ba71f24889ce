"""The standard helpers against a minimal engine, and the host environment (vmenv)."""

from __future__ import annotations

import pytest

from bpfvm.errors import VmFault
from bpfvm.helpers import Arg, Ret
from bpfvm.maps import EINVAL, ENOENT, Map, make_map
from bpfvm.program import MapDef
from bpfvm.stdhelpers import conformance_helpers, format_trace, standard_helpers
from bpfvm.vmenv import VmEnv

M64 = (1 << 64) - 1
MAP_HANDLE = 0x1000
STORAGE = 0x100000
SCRATCH = 0x2000


class FakeVm:
    """The helper protocol over a flat dict of byte strings: one map, one scratch area."""

    def __init__(self, m: Map, env: VmEnv | None = None) -> None:
        self.map = m
        self.env = env or VmEnv()
        self.scratch = bytearray(64)

    def _area(self, addr: int, size: int) -> tuple[bytearray, int]:
        for base, buf in ((SCRATCH, self.scratch), (STORAGE, self.map.buf)):
            if base <= addr and addr + size <= base + len(buf):
                return buf, addr - base
        raise VmFault(0, f"bad access at {addr:#x}")

    def read(self, addr: int, size: int) -> bytes:
        buf, i = self._area(addr, size)
        return bytes(buf[i:i + size])

    def write(self, addr: int, data: bytes) -> None:
        buf, i = self._area(addr, len(data))
        buf[i:i + len(data)] = data

    def map_at(self, handle: int) -> Map:
        if handle != MAP_HANDLE:
            raise VmFault(0, "not a map")
        return self.map

    def map_value_addr(self, m: Map, offset: int) -> int:
        return STORAGE + offset


def call(vm: FakeVm, name: str, *args: int) -> int:
    spec = standard_helpers().by_name(name)
    assert spec is not None and spec.impl is not None
    return spec.impl(vm, *(list(args) + [0] * (5 - len(args))))


def test_table() -> None:
    table = standard_helpers()
    assert [(s.id, s.name) for s in table] == [
        (1, "map_lookup_elem"), (2, "map_update_elem"), (3, "map_delete_elem"),
        (5, "ktime_get_ns"), (6, "trace_printk"), (7, "get_prandom_u32")]
    assert table.get(1).args == (Arg.MAP, Arg.MAP_KEY)
    assert table.get(1).ret is Ret.MAP_VALUE_OR_NULL
    assert all(s.impl is not None and s.doc for s in table)
    conf = conformance_helpers()
    assert conf.get(5).name == "unwind" and conf.get(5).impl(None, 77, 1, 2, 3, 4) == 77
    assert conf.get(1).name == "map_lookup_elem"


def test_map_helpers_on_a_hash_map() -> None:
    vm = FakeVm(make_map(MapDef("h", "hash", 4, 8, 2)))
    vm.write(SCRATCH, b"\x07\0\0\0")  # key
    vm.write(SCRATCH + 8, b"valuevvv")  # value
    assert call(vm, "map_lookup_elem", MAP_HANDLE, SCRATCH) == 0
    assert call(vm, "map_update_elem", MAP_HANDLE, SCRATCH, SCRATCH + 8, 0) == 0
    ptr = call(vm, "map_lookup_elem", MAP_HANDLE, SCRATCH)
    assert ptr == STORAGE + vm.map.find(b"\x07\0\0\0")
    assert vm.read(ptr, 8) == b"valuevvv"
    assert call(vm, "map_update_elem", MAP_HANDLE, SCRATCH, SCRATCH + 8, 1) == -17 & M64
    assert call(vm, "map_delete_elem", MAP_HANDLE, SCRATCH) == 0
    assert call(vm, "map_delete_elem", MAP_HANDLE, SCRATCH) == -ENOENT & M64


def test_map_helpers_on_an_array_map() -> None:
    vm = FakeVm(make_map(MapDef("a", "array", 4, 4, 2)))
    vm.write(SCRATCH, b"\x01\0\0\0")
    assert call(vm, "map_lookup_elem", MAP_HANDLE, SCRATCH) == STORAGE + 8
    assert call(vm, "map_delete_elem", MAP_HANDLE, SCRATCH) == -EINVAL & M64
    vm.write(SCRATCH, b"\x02\0\0\0")
    assert call(vm, "map_lookup_elem", MAP_HANDLE, SCRATCH) == 0


def test_map_helpers_fault_on_bad_arguments() -> None:
    vm = FakeVm(make_map(MapDef("a", "array", 4, 4, 2)))
    with pytest.raises(VmFault, match="not a map"):
        call(vm, "map_lookup_elem", 5, SCRATCH)
    with pytest.raises(VmFault, match="bad access"):
        call(vm, "map_lookup_elem", MAP_HANDLE, 0)


def test_clock_and_random_come_from_the_env() -> None:
    vm = FakeVm(make_map(MapDef("a", "array", 4, 4, 1)), VmEnv(clock=lambda: 123, seed=4))
    assert call(vm, "ktime_get_ns") == 123
    assert call(vm, "get_prandom_u32") == VmEnv(seed=4).random_u32()


@pytest.mark.parametrize(("fmt", "args", "want"), [
    (b"x=%d", (-5 & M64,), "x=-5"),
    (b"%u", (-1 & M64,), "4294967295"),
    (b"%lld %llu", (-1 & M64, -1 & M64), "-1 18446744073709551615"),
    (b"%ld", (1 << 40,), "1099511627776"),
    (b"%d", (1 << 40,), "0"),
    (b"%x|%X|%08x|%-4d|", (255, 255, 255), None),  # a fourth conversion
    (b"%x|%X|%08x|", (255, 255, 255), "ff|FF|000000ff|"),
    (b"[%-4d][%4i]", (7, 7), "[7   ][   7]"),
    (b"%c%c", (ord("o"), ord("k")), "ok"),
    (b"%p", (0x1234,), "0x1234"),
    (b"100%%", (), "100%"),
    (b"%s", (0,), None),
    (b"trailing %", (), None),
    (b"%d %d", (1,), None),
])
def test_format_trace(fmt: bytes, args: tuple[int, ...], want: str | None) -> None:
    assert format_trace(fmt, args) == want


def test_trace_printk() -> None:
    vm = FakeVm(make_map(MapDef("a", "array", 4, 4, 1)))
    vm.write(SCRATCH, b"n=%d\n\0garbage")
    assert call(vm, "trace_printk", SCRATCH, 14, 3) == 4
    assert vm.env.trace == ["n=3"]
    assert call(vm, "trace_printk", SCRATCH, 0) == -EINVAL & M64
    vm.write(SCRATCH, b"%s\0")
    assert call(vm, "trace_printk", SCRATCH, 3) == -EINVAL & M64
    assert vm.env.trace == ["n=3"]
