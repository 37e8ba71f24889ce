"""The address space: object addresses, bounds, value windows and fault messages."""

from __future__ import annotations

import pytest

from bpfvm.errors import VmFault
from bpfvm.interp.memory import HALF, AddressSpace


def space_with(*sizes: int) -> tuple[AddressSpace, list[int]]:
    space = AddressSpace()
    bases = [space.add(f"obj{i}", bytearray(n)) for i, n in enumerate(sizes)]
    return space, bases


def test_objects_get_distinct_high_parts() -> None:
    space, (a, b) = space_with(16, 16)
    assert a == (1 << 32) | HALF and b == (2 << 32) | HALF
    assert space.object_at(a + 3).name == "obj0" and space.object_at(b - 3).name == "obj1"
    assert space.fast[a >> 32] is space.objects[1].buf


@pytest.mark.parametrize(("off", "size", "ok"), [
    (0, 8, True), (8, 8, True), (9, 8, False), (16, 1, False), (-1, 1, False), (15, 1, True)])
def test_bounds(off: int, size: int, ok: bool) -> None:
    space, (a,) = space_with(16)
    if ok:
        buf, i = space.resolve(a + off, size, "read", 0)
        assert i == off and len(buf) == 16
    else:
        plural = "byte" if size == 1 else "bytes"
        with pytest.raises(VmFault, match=f"invalid read of {size} {plural} at"):
            space.resolve(a + off, size, "read", 0)


@pytest.mark.parametrize(("addr", "message"), [
    (0, "pc 7: invalid write of 4 bytes at 0x0 (null pointer)"),
    (0xFFF, "pc 7: invalid write of 4 bytes at 0xfff (null pointer)"),
    (0x7777_0000_0000, "pc 7: invalid write of 4 bytes at 0x777700000000 "
     "(no object at this address)"),
])
def test_addresses_outside_objects(addr: int, message: str) -> None:
    space, _ = space_with(16)
    with pytest.raises(VmFault) as info:
        space.store(addr, 4, 1, 7)
    assert str(info.value) == message


def test_messages_name_the_object_and_offset() -> None:
    space = AddressSpace()
    ctx = space.add("ctx", bytearray(8))
    stack = space.add("stack", bytearray(512), origin=512)
    with pytest.raises(VmFault, match=r"at 0x180000006 \(ctx\+6, size 8\)"):
        space.load(ctx + 6, 4, 0)
    with pytest.raises(VmFault, match=r"\(ctx-2, size 8\)"):
        space.load(ctx - 2, 1, 0)
    with pytest.raises(VmFault, match=r"\(stack\+0, size 512\)"):
        space.load(stack + 512, 8, 0)
    assert space.describe(stack + 504) == "stack-8, size 512"
    assert space.describe(0) == "null"


def test_windowed_objects_allow_only_values() -> None:
    space = AddressSpace()
    # 3 slots of 24 bytes; values at [16, 20) of each slot
    base = space.add("map 'h'", bytearray(72), window=(24, 16, 4))
    assert base >> 32 not in space.fast
    buf, i = space.resolve(base + 24 + 16, 4, "read", 0)
    assert i == 40
    for off, size in ((24 + 16, 8), (24 + 15, 1), (24 + 20, 1), (72 + 16, 4), (0, 1)):
        with pytest.raises(VmFault, match="invalid read"):
            space.resolve(base + off, size, "read", 0)
    with pytest.raises(VmFault, match=r"map 'h' entry 1 value\+2, value size 4"):
        space.resolve(base + 24 + 18, 4, "read", 3)
    with pytest.raises(VmFault, match=r"map 'h'\+8, outside any value of size 4"):
        space.resolve(base + 8, 1, "read", 3)


def test_load_store_little_endian_and_truncation() -> None:
    space, (a,) = space_with(8)
    space.store(a, 8, 0x0102030405060708, 0)
    assert space.objects[1].buf == bytearray(bytes.fromhex("0807060504030201"))
    space.store(a, 2, -1, 0)
    assert space.load(a, 4, 0) == 0x0506FFFF
    space.write(a + 4, b"\xaa\xbb", 0)
    assert space.read(a + 3, 3, 0) == b"\x05\xaa\xbb"


def test_replace_and_unmap() -> None:
    space, (a,) = space_with(4)
    space.replace(a, bytearray(b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    assert space.load(a + 4, 4, 0) == 0x08070605
    space.replace(a, None)
    assert a >> 32 not in space.fast
    with pytest.raises(VmFault, match="size 0"):
        space.load(a, 1, 0)


def test_addresses_wrap_to_64_bits() -> None:
    space, (a,) = space_with(8)
    assert space.read(a + (1 << 64), 1, 0) == b"\0"


def test_remove() -> None:
    space, (a, b) = space_with(4, 4)
    space.remove(a)
    with pytest.raises(VmFault, match="no object at this address"):
        space.load(a, 1, 0)
    assert space.load(b, 1, 0) == 0
    assert space.add("new", bytearray(1)) >> 32 == 3


def test_another_first_object_lays_the_same_objects_out_elsewhere():
    a, b = AddressSpace(), AddressSpace(first=1 << 12)
    buf = bytearray(16)
    x, y = a.add("ctx", buf), b.add("ctx", buf)
    assert x != y and (y - x) == ((1 << 12) - 1) << 32
    b.store(y + 8, 8, 0x1122, pc=0)
    assert a.load(x + 8, 8, pc=0) == 0x1122  # the same buffer behind both
    with pytest.raises(ValueError):
        AddressSpace(first=0)
