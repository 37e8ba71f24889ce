"""The opcode table: composition from fields, uniqueness, coverage of RFC 9669."""

from __future__ import annotations

import pytest

from bpfvm import isa


def test_every_key_and_opcode_discriminator_pair_is_unique() -> None:
    seen = set()
    for spec in isa.TABLE:
        pair = (spec.opcode, spec.match)
        assert pair not in seen, spec.key
        seen.add(pair)


@pytest.mark.parametrize("key,opcode", [
    ("add64_k", 0x07), ("add64_x", 0x0F), ("add32_k", 0x04), ("mov64_k", 0xB7),
    ("mov32_x", 0xBC), ("arsh64_x", 0xCF), ("neg64", 0x87), ("neg32", 0x84),
    ("le16", 0xD4), ("be32", 0xDC), ("bswap64", 0xD7), ("ja", 0x05), ("gotol", 0x06),
    ("jeq64_k", 0x15), ("jsle32_x", 0xDE), ("call", 0x85), ("callx", 0x8D), ("exit", 0x95),
    ("lddw", 0x18), ("ldxw", 0x61), ("ldxh", 0x69), ("ldxb", 0x71), ("ldxdw", 0x79),
    ("ldxsw", 0x81), ("ldxsh", 0x89), ("ldxsb", 0x91), ("stw", 0x62), ("stdw", 0x7A),
    ("stxb", 0x73), ("stxdw", 0x7B), ("atomic32_add", 0xC3), ("atomic64_cmpxchg", 0xDB),
    ("ldabsb", 0x30), ("ldindw", 0x40), ("sdiv64_k", 0x37), ("smod32_x", 0x9C),
])
def test_opcodes_match_rfc9669(key: str, opcode: int) -> None:
    assert isa.BY_KEY[key].opcode == opcode


def test_discriminated_operations() -> None:
    assert isa.lookup(0x3F, 0, 1, 0).key == "sdiv64_x"
    assert isa.lookup(0x3F, 0, 0, 0).key == "div64_x"
    assert isa.lookup(0x3F, 0, 2, 0) is None
    assert isa.lookup(0xBF, 0, 32, 0).key == "movsx32_64"
    assert isa.lookup(0xBC, 0, 32, 0) is None  # no 32->32 sign extension
    assert isa.lookup(0xDB, 0, 0, 0xF1).key == "atomic64_cmpxchg"
    assert isa.lookup(0xC3, 0, 0, 0x41).key == "atomic32_fetch_or"
    assert isa.lookup(0xC3, 0, 0, 0x02) is None
    assert isa.lookup(0x85, 1, 0, 5).key == "call_local"
    assert isa.lookup(0x18, 2, 0, 0).key == "lddw_map_value"
    assert isa.lookup(0xDC, 0, 0, 24) is None


def test_groups_and_versions() -> None:
    groups = {s.group for s in isa.TABLE}
    assert {"base32", "base64", "atomic32", "atomic64", "divmul32", "divmul64",
            "packet"} <= groups
    v4 = {s.key for s in isa.TABLE if s.version == 4}
    assert {"sdiv64_k", "smod32_x", "movsx8_32", "ldxsb", "bswap16", "gotol"} <= v4
    assert isa.BY_KEY["jlt64_k"].version == 2
    assert isa.BY_KEY["jeq32_x"].version == 3


def test_signedness_follows_the_operation() -> None:
    signed = {s.key for s in isa.TABLE if s.signed}
    assert "arsh64_k" in signed and "jsgt32_x" in signed and "ldxsh" in signed
    assert "rsh64_k" not in signed and "jgt64_k" not in signed and "ldxh" not in signed


def test_widths() -> None:
    assert isa.BY_KEY["add32_k"].width == 32 and isa.BY_KEY["add64_k"].width == 64
    assert isa.BY_KEY["ldxh"].width == 2 and isa.BY_KEY["atomic64_add"].width == 8
    assert isa.BY_KEY["be16"].width == 16
