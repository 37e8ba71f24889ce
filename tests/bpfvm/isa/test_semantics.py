"""The arithmetic functions against hand-computed rows and algebraic properties."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfvm import isa
from bpfvm.isa import bits as width
from bpfvm.isa import semantics
from bpfvm.isa.bits import M32, M64
from tests.conftest import DATA

DATA = tomllib.loads((DATA / "interp" / "alu.toml").read_text())
BY_CONF: dict[str, list[isa.OpSpec]] = {}
for _spec in isa.TABLE:
    BY_CONF.setdefault(_spec.conf, []).append(_spec)

u64 = st.integers(0, M64)
small = st.integers(0, 200)


def num(text: str) -> int:
    return int(text, 0) & M64


def fits_imm(value: int) -> bool:
    return semantics.operand(width.sx(value, 32)) == value


def specs(conf: str, kinds: tuple[isa.Kind, ...]) -> list[isa.OpSpec]:
    found = [s for s in BY_CONF.get(conf, []) if s.kind in kinds]
    assert found, f"no spec for mnemonic {conf!r}"
    return found


ALU_KINDS = (isa.Kind.ALU, isa.Kind.MOV)


@pytest.mark.parametrize("row", DATA["binary"], ids=lambda r: "-".join(r[:3]))
def test_binary_rows(row: list[str]) -> None:
    op, a, b, want = row[0], num(row[1]), num(row[2]), num(row[3])
    for spec in specs(op, ALU_KINDS):
        f = semantics.ALU[spec.key]
        if spec.src_reg:
            assert f(a, b) == want, spec.key
        elif fits_imm(b):
            assert f(a, semantics.operand(width.sx(b, 32))) == want, spec.key


@pytest.mark.parametrize("row", DATA["unary"], ids=lambda r: "-".join(r[:2]))
def test_unary_rows(row: list[str]) -> None:
    (spec,) = specs(row[0], (isa.Kind.NEG, isa.Kind.END))
    assert semantics.ALU[spec.key](num(row[1]), 0) == num(row[2])


@pytest.mark.parametrize("row", DATA["movsx"], ids=lambda r: "-".join(r[:2]))
def test_movsx_rows(row: list[str]) -> None:
    (spec,) = specs(row[0], (isa.Kind.MOVSX,))
    assert semantics.ALU[spec.key](0xDEAD, num(row[1])) == num(row[2])


@pytest.mark.parametrize("row", DATA["jumps"], ids=lambda r: "-".join(map(str, r[:3])))
def test_jump_rows(row: list) -> None:
    op, a, b, taken = row[0], num(row[1]), num(row[2]), row[3]
    for spec in specs(op, (isa.Kind.JCOND,)):
        if spec.src_reg or fits_imm(b):
            assert semantics.JUMP[spec.key](a, b) is taken, spec.key


@pytest.mark.parametrize("row", DATA["atomics"], ids=lambda r: "-".join(r[:3]))
def test_atomic_rows(row: list[str]) -> None:
    op = row[0]
    mem, src, r0, mem_after, src_after, r0_after = (num(x) for x in row[1:])
    (spec,) = specs(op, (isa.Kind.ATOMIC,))
    bits = spec.width * 8
    m = width.mask(bits)
    old = mem & m
    if spec.op == "cmpxchg":
        new, r0 = semantics.cmpxchg(old, r0, src, bits), old
    else:
        new = semantics.ATOMIC[spec.key](old, src)
        if semantics.fetches(spec):
            src = old
    assert (mem & ~m & M64) | new == mem_after
    assert (src, r0) == (src_after, r0_after)


def test_every_arithmetic_spec_has_rows() -> None:
    covered = {r[0] for name in ("binary", "unary", "movsx", "jumps", "atomics")
               for r in DATA[name]}
    kinds = ALU_KINDS + (isa.Kind.NEG, isa.Kind.END, isa.Kind.MOVSX, isa.Kind.JCOND,
                         isa.Kind.ATOMIC)
    missing = [s.key for s in isa.TABLE if s.kind in kinds and s.conf not in covered]
    assert not missing


def test_tables_cover_the_isa() -> None:
    alu = {s.key for s in isa.TABLE if s.kind in ALU_KINDS + (isa.Kind.NEG, isa.Kind.END,
                                                               isa.Kind.MOVSX)}
    assert set(semantics.ALU) == alu
    assert set(semantics.JUMP) == {s.key for s in isa.TABLE if s.kind is isa.Kind.JCOND}
    assert set(semantics.ATOMIC) == {s.key for s in isa.TABLE
                                     if s.kind is isa.Kind.ATOMIC and s.op != "cmpxchg"}


@pytest.mark.parametrize(("value", "bits", "want"), [
    (0x7F, 8, 127), (0x80, 8, -128), (0x1FF, 8, -1), (0xFFFF_FFFF, 32, -1),
    (0x8000_0000_0000_0000, 64, -(1 << 63)), (5, 64, 5)])
def test_sx(value: int, bits: int, want: int) -> None:
    assert width.sx(value, bits) == want


@pytest.mark.parametrize(("value", "size", "signed", "want"), [
    (0x80, 1, True, 0xFFFF_FFFF_FFFF_FF80), (0x80, 1, False, 0x80),
    (0x8000, 2, True, 0xFFFF_FFFF_FFFF_8000), (0x7FFF_FFFF, 4, True, 0x7FFF_FFFF),
    (0x1_0000_0080, 1, False, 0x80)])
def test_extend(value: int, size: int, signed: bool, want: int) -> None:
    assert semantics.extend(value, size, signed) == want


def test_operand_sign_extends_the_immediate() -> None:
    assert semantics.operand(-1) == M64
    assert semantics.operand(0x7FFF_FFFF) == 0x7FFF_FFFF


# -- properties --------------------------------------------------------------

@given(u64, u64)
def test_32_bit_results_are_zero_extended(a: int, b: int) -> None:
    for spec in isa.TABLE:
        if spec.key in semantics.ALU and spec.width == 32 and spec.kind is not isa.Kind.END:
            assert 0 <= semantics.ALU[spec.key](a, b) <= M32, spec.key
        elif spec.key in semantics.ALU:
            assert 0 <= semantics.ALU[spec.key](a, b) <= M64, spec.key


@given(u64, u64)
def test_32_bit_ops_see_only_low_halves(a: int, b: int) -> None:
    hi_a, hi_b = a & ~M32, b & ~M32
    for spec in isa.TABLE:
        if spec.key in semantics.ALU and spec.width == 32 and spec.kind is not isa.Kind.END:
            f = semantics.ALU[spec.key]
            assert f(a, b) == f(a ^ hi_a, b ^ hi_b), spec.key


@given(u64, u64)
def test_32_bit_ring_ops_are_64_bit_ops_truncated(a: int, b: int) -> None:
    for op in ("add", "sub", "mul", "or", "and", "xor", "lsh"):
        shift_b = b & 31 if op == "lsh" else b
        assert semantics.ALU[f"{op}32_x"](a, shift_b) == \
            semantics.ALU[f"{op}64_x"](a, shift_b) & M32


@given(u64, u64, st.integers(0, 4))
def test_shift_amounts_are_masked(a: int, b: int, k: int) -> None:
    for op in ("lsh", "rsh", "arsh"):
        assert semantics.ALU[f"{op}64_x"](a, b & 63) == \
            semantics.ALU[f"{op}64_x"](a, (b & 63) + 64 * k)
        assert semantics.ALU[f"{op}32_x"](a, b & 31) == \
            semantics.ALU[f"{op}32_x"](a, (b & 31) + 32 * k)


@given(u64, u64)
def test_signed_division_identity(a: int, b: int) -> None:
    for bits in (32, 64):
        m = width.mask(bits)
        x, y = width.sx(a, bits), width.sx(b, bits)
        q = width.sx(semantics.ALU[f"sdiv{bits}_x"](a, b), bits)
        r = width.sx(semantics.ALU[f"smod{bits}_x"](a, b), bits)
        if y == 0:
            assert (q, r) == (0, x)
            continue
        assert (y * q + r) & m == x & m  # wraps only for INT_MIN / -1
        assert abs(r) < abs(y)
        assert r == 0 or (r < 0) == (x < 0)


@given(u64, u64)
def test_unsigned_division_identity(a: int, b: int) -> None:
    for bits in (32, 64):
        m = width.mask(bits)
        q = semantics.ALU[f"div{bits}_x"](a, b)
        r = semantics.ALU[f"mod{bits}_x"](a, b)
        if b & m == 0:
            assert (q, r) == (0, a & m)
        else:
            assert q * (b & m) + r == a & m and r < b & m


@given(u64)
def test_swaps_are_involutions(a: int) -> None:
    for size in (16, 32, 64):
        f = semantics.ALU[f"bswap{size}"]
        assert f(f(a, 0), 0) == a & width.mask(size)
        assert semantics.ALU[f"be{size}"](a, 0) == f(a, 0)


@given(u64, u64)
def test_jump_conditions_are_consistent(a: int, b: int) -> None:
    for w in (32, 64):
        J = semantics.JUMP
        assert J[f"jeq{w}_x"](a, b) != J[f"jne{w}_x"](a, b)
        assert J[f"jgt{w}_x"](a, b) == J[f"jlt{w}_x"](b, a)
        assert J[f"jge{w}_x"](a, b) == (not J[f"jlt{w}_x"](a, b))
        assert J[f"jsgt{w}_x"](a, b) == J[f"jslt{w}_x"](b, a)
        assert J[f"jsge{w}_x"](a, b) == (not J[f"jslt{w}_x"](a, b))
        assert J[f"jsle{w}_x"](a, b) == (not J[f"jsgt{w}_x"](a, b))
        assert J[f"jle{w}_x"](a, b) == (not J[f"jgt{w}_x"](a, b))
        assert J[f"jset{w}_x"](a, b) == (a & b & width.mask(w) != 0)
