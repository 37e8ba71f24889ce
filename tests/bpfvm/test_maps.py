"""Array and hash maps: the documented layouts, the Python API, errno results."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfvm.maps import (
    ANY,
    E2BIG,
    EEXIST,
    EINVAL,
    ENOENT,
    EXIST,
    NOEXIST,
    ArrayMap,
    HashMap,
    MapError,
    fnv1a64,
    make_map,
    make_maps,
)
from bpfvm.program import MapDef


def array(value: int = 8, entries: int = 4) -> ArrayMap:
    return ArrayMap(MapDef("a", "array", 4, value, entries))


def hashmap(key: int = 4, value: int = 8, entries: int = 4) -> HashMap:
    return HashMap(MapDef("h", "hash", key, value, entries))


def k32(i: int) -> bytes:
    return i.to_bytes(4, "little")


# -- layouts ---------------------------------------------------------------------

@pytest.mark.parametrize(("value", "stride"), [(1, 8), (8, 8), (12, 16), (17, 24)])
def test_array_layout(value: int, stride: int) -> None:
    m = array(value, 3)
    assert (m.stride, m.value_offset, len(m.buf)) == (stride, 0, 3 * stride)
    m.update(k32(2), b"\x5a" * value)
    assert m.buf[2 * stride:2 * stride + value] == b"\x5a" * value
    assert m.find(k32(2)) == 2 * stride and m.window == (stride, 0, value)


@pytest.mark.parametrize(("key", "value", "entries", "cap", "voff", "stride"), [
    (4, 8, 1, 4, 16, 24), (4, 8, 3, 8, 16, 24), (12, 3, 16, 32, 24, 32), (8, 8, 2, 4, 16, 24)])
def test_hash_layout(key: int, value: int, entries: int, cap: int, voff: int,
                     stride: int) -> None:
    m = hashmap(key, value, entries)
    assert (m.capacity, m.value_offset, m.stride, len(m.buf)) == (cap, voff, stride,
                                                                  cap * stride)


def test_hash_slot_contents_follow_the_documented_hash() -> None:
    m = hashmap(4, 8, 4)
    key, value = b"\x01\x02\x03\x04", b"ABCDEFGH"
    m.update(key, value)
    slot = fnv1a64(key) & (m.capacity - 1)
    base = slot * m.stride
    assert m.buf[base] == 1 and m.buf[base + 1:base + 8] == bytes(7)
    assert m.buf[base + 8:base + 12] == key
    assert m.buf[base + m.value_offset:base + m.value_offset + 8] == value
    assert m.find(key) == base + m.value_offset


@pytest.mark.parametrize(("data", "want"), [
    (b"", 0xCBF29CE484222325), (b"a", 0xAF63DC4C8601EC8C), (b"foobar", 0x85944171F73967E8)])
def test_fnv1a64_reference_values(data: bytes, want: int) -> None:
    assert fnv1a64(data) == want


def test_linear_probing_and_tombstones() -> None:
    m = hashmap(4, 8, 8)
    mask = m.capacity - 1
    # find three keys with the same home slot
    home = fnv1a64(k32(0)) & mask
    same = [k for k in (k32(i) for i in range(5000)) if fnv1a64(k) & mask == home][:3]
    for i, key in enumerate(same):
        m.update(key, bytes([i]) * 8)
    slots = [(m.find(k) - m.value_offset) // m.stride for k in same]
    assert slots == [home, (home + 1) & mask, (home + 2) & mask]
    assert m.delete(same[1])
    assert m.buf[slots[1] * m.stride] == 2  # tombstone
    assert m.lookup(same[2]) == b"\x02" * 8  # found past the tombstone
    m.update(same[1], b"\x09" * 8)  # reuses the tombstone
    assert m.find(same[1]) == slots[1] * m.stride + m.value_offset


# -- Python API -----------------------------------------------------------------

def test_array_api() -> None:
    m = array(4, 3)
    assert m.lookup(k32(1)) == bytes(4) and m.lookup(k32(3)) is None
    m.update(k32(1), b"abcd")
    assert dict(m.items())[k32(1)] == b"abcd" and len(m) == 3
    assert list(m.keys()) == [k32(0), k32(1), k32(2)]
    with pytest.raises(MapError, match="cannot be deleted"):
        m.delete(k32(1))
    with pytest.raises(MapError, match="key already exists"):
        m.update(k32(1), b"xxxx", NOEXIST)
    m.update(k32(1), b"wxyz", EXIST)
    with pytest.raises(MapError, match="map is full"):
        m.update(k32(7), b"xxxx")
    m.clear()
    assert m.lookup(k32(1)) == bytes(4)


def test_hash_api() -> None:
    m = hashmap(2, 3, 2)
    assert m.lookup(b"ab") is None and len(m) == 0
    m.update(b"ab", b"123")
    m.update(b"cd", b"456")
    assert sorted(m.items()) == [(b"ab", b"123"), (b"cd", b"456")]
    assert b"ab" in m and b"zz" not in m
    with pytest.raises(MapError, match="'h': update failed: map is full"):
        m.update(b"ef", b"789")
    m.update(b"ab", b"999")  # replacing needs no room
    with pytest.raises(MapError, match="key already exists"):
        m.update(b"ab", b"000", NOEXIST)
    assert m.delete(b"ab") and not m.delete(b"ab")
    with pytest.raises(MapError, match="no such key"):
        m.update(b"ab", b"000", EXIST)
    m.update(b"ef", b"789")
    m.clear()
    assert len(m) == 0 and list(m.keys()) == []


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: m.lookup(b"abc"), "key must be 4 bytes, not 3"),
    (lambda m: m.update(b"abcd", b"x"), "value must be 8 bytes, not 1"),
    (lambda m: m.delete(b"abcdefgh"), "key must be 4 bytes, not 8"),
])
def test_wrong_sizes(call, message: str) -> None:  # type: ignore[no-untyped-def]
    for m in (array(), hashmap()):
        with pytest.raises(MapError, match=message):
            call(m)


def test_errno_results() -> None:
    a, h = array(8, 2), hashmap(4, 8, 1)
    assert a.update_errno(k32(5), bytes(8)) == -E2BIG
    assert a.update_errno(k32(0), bytes(8), NOEXIST) == -EEXIST
    assert a.update_errno(k32(0), bytes(8), 7) == -EINVAL
    assert a.delete_errno(k32(0)) == -EINVAL
    assert h.update_errno(k32(1), bytes(8), EXIST) == -ENOENT
    assert h.update_errno(k32(1), bytes(8), ANY) == 0
    assert h.update_errno(k32(2), bytes(8), ANY) == -E2BIG
    assert h.delete_errno(k32(2)) == -ENOENT
    assert h.update_errno(k32(1), bytes(8), 3) == -EINVAL


def test_bad_definitions() -> None:
    with pytest.raises(MapError, match="array maps have 4-byte keys"):
        make_map(MapDef("x", "array", 8, 8, 1))
    with pytest.raises(MapError, match="unknown map type 'ring'"):
        make_map(MapDef("x", "ring", 4, 8, 1))
    with pytest.raises(MapError, match="is a hash map, not array"):
        ArrayMap(MapDef("x", "hash", 4, 8, 1))
    assert [m.kind for m in make_maps([MapDef("a", "array", 4, 4, 1),
                                       MapDef("b", "hash", 4, 4, 1)])] == ["array", "hash"]


def test_buffer_identity_survives_rebuild_and_clear() -> None:
    m = hashmap(4, 8, 4)
    buf = m.buf
    for round_ in range(50):  # churn: tombstones force rebuilds
        for i in range(4):
            m.update(k32(round_ * 4 + i), bytes(8))
        for i in range(4):
            m.delete(k32(round_ * 4 + i))
    m.clear()
    assert m.buf is buf and m.deleted == 0


# -- against a dict ----------------------------------------------------------------

ops = st.lists(st.tuples(st.sampled_from(["update", "delete"]), st.integers(0, 12),
                         st.binary(min_size=8, max_size=8),
                         st.sampled_from([ANY, NOEXIST, EXIST])), max_size=80)


@settings(max_examples=200)
@given(ops)
def test_hash_map_behaves_like_a_bounded_dict(seq: list) -> None:
    m, model = hashmap(4, 8, 6), {}
    for op, i, value, flags in seq:
        key = k32(i)
        if op == "update":
            exists = key in model
            want = (-EEXIST if exists and flags == NOEXIST else
                    -ENOENT if not exists and flags == EXIST else
                    -E2BIG if not exists and len(model) >= 6 else 0)
            assert m.update_errno(key, value, flags) == want
            if want == 0:
                model[key] = value
        else:
            assert m.delete_errno(key) == (0 if key in model else -ENOENT)
            model.pop(key, None)
        assert len(m) == len(model)
    assert dict(m.items()) == model
    assert m.count + m.deleted <= m.capacity * 3 // 4
