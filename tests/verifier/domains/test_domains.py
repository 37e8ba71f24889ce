"""The verifier's domains: tnum, scalar bounds, arithmetic and refinement.

Soundness is checked against the ISA's own semantics (bpfvm.isa.semantics): for
abstract values built from concrete samples, the abstract result of every
ALU operation contains the concrete result, and refining by a comparison's
actual outcome keeps the concrete operands.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfvm.isa import bits as width
from bpfvm.isa import semantics
from verifier.domains.arith import alu, bswap, loaded, sext, truncate, zext32
from verifier.domains.compare import decided, refine
from verifier.domains.interval import Scalar, Thresholds, make
from verifier.domains.tnum import M64, Tnum

INTERESTING = [0, 1, 2, 7, 63, 64, 255, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32,
               (1 << 63) - 1, 1 << 63, M64, M64 - 1]
values = st.one_of(st.sampled_from(INTERESTING), st.integers(0, M64),
                   st.integers(0, 300), st.integers(M64 - 300, M64))
samples = st.lists(values, min_size=1, max_size=3)

ALU_OPS = ("add", "sub", "mul", "div", "mod", "and", "or", "xor", "lsh", "rsh", "arsh",
           "sdiv", "smod")
JMP_OPS = ("jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset")


def abstract(xs: list[int]) -> Scalar:
    a = Scalar.const(xs[0])
    for x in xs[1:]:
        a = a.join(Scalar.const(x))
    return a


def test_tnum_basics() -> None:
    assert Tnum.range(0, 63) == Tnum(0, 0x3F)
    assert Tnum.const(5).add(Tnum.const(7)) == Tnum.const(12)
    assert Tnum(0, 0x3F).lshift(3) == Tnum(0, 0x1F8)
    assert Tnum(0, 1).meet(Tnum.const(2)) is None
    assert Tnum(0, 3).leq(Tnum(0, 7)) and not Tnum(0, 7).leq(Tnum(0, 3))
    assert Tnum(8, 0).widen(Tnum(16, 0)) == Tnum(0, M64 & ~7)  # alignment survives


def test_scalar_idioms() -> None:
    r = alu("and", Scalar.unknown(), Scalar.const(0x3F), 64)
    assert (r.umin, r.umax, r.smin, r.smax) == (0, 63, 0, 63)
    r = alu("mul", r, Scalar.const(8), 64)
    assert (r.umin, r.umax) == (0, 504) and r.t == Tnum(0, 0x1F8)
    u32 = Scalar.urange(0, 0xFFFFFFFF)
    low, _ = refine("jgt", u32, Scalar.const(63), 32, False)  # type: ignore[misc]
    assert (low.umin, low.umax) == (0, 63)  # w2 <= 63 on a u32 gives the 64-bit bound
    assert refine("jgt", Scalar.const(5), Scalar.const(10), 64, True) is None
    assert decided("jeq", Scalar.const(3), Scalar.const(3), 64) is True
    assert decided("jgt", u32, Scalar.const(5), 64) is None


def test_widen_to_thresholds() -> None:
    th = Thresholds([10, 100])
    a = Scalar.const(0)
    b = a.join(Scalar.const(2))
    w = a.widen(b, th)
    assert (w.umin, w.umax) == (0, 9)
    w2 = w.widen(w.join(Scalar.const(10)), th)
    assert w2.umax == 10
    assert w2.widen(w2, th) is w2


def test_misc_operations() -> None:
    assert sext(Scalar.const(0x80), 8, 64).value == M64 - 127
    assert zext32(Scalar.const(M64)).value == 0xFFFFFFFF
    assert truncate(Scalar.const(0x1234), 1).value == 0x34
    assert bswap(Scalar.const(0x1234), 16).value == 0x3412
    assert loaded(2, True).smin == -32768 and loaded(4, False).umax == 0xFFFFFFFF


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALU_OPS), st.sampled_from((32, 64)), samples, samples, st.data())
def test_alu_sound(op: str, w: int, xs: list[int], ys: list[int], data: st.DataObject) -> None:
    a, b = abstract(xs), abstract(ys)
    x, y = data.draw(st.sampled_from(xs)), data.draw(st.sampled_from(ys))
    want = semantics.ALU[f"{op}{w}_x"](x, y)
    got = alu(op, a, b, w)
    assert got.contains(want), (op, w, xs, ys, x, y, hex(want), got)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(JMP_OPS), st.sampled_from((32, 64)), samples, samples, st.data())
def test_refine_sound(op: str, w: int, xs: list[int], ys: list[int], data: st.DataObject) -> None:
    a, b = abstract(xs), abstract(ys)
    x, y = data.draw(st.sampled_from(xs)), data.draw(st.sampled_from(ys))
    taken = semantics.JUMP[f"{op}{w}_x"](x, y)
    res = refine(op, a, b, w, taken)
    assert res is not None, (op, w, xs, ys, x, y, taken)
    assert res[0].contains(x) and res[1].contains(y), (op, w, xs, ys, x, y, taken, res)


@settings(max_examples=200, deadline=None)
@given(samples, samples)
def test_lattice_laws(xs: list[int], ys: list[int]) -> None:
    a, b = abstract(xs), abstract(ys)
    j = a.join(b)
    assert a.leq(j) and b.leq(j)
    m = a.meet(j)
    assert m is not None and all(m.contains(x) for x in xs)
    for x in xs + ys:
        assert j.contains(x)


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_sext_sound(bits: int) -> None:
    for x in INTERESTING:
        a = Scalar.urange(0, x)
        want = width.sx(x & ((1 << bits) - 1), bits) & M64
        assert sext(a, bits, 64).contains(want)


S64 = st.integers(-(1 << 63), (1 << 63) - 1)
S32 = st.integers(-(1 << 31), (1 << 31) - 1)


@settings(max_examples=400, deadline=None)
@given(st.lists(S64, min_size=2, max_size=2), st.lists(st.integers(0, M64), min_size=2,
                                                       max_size=2), values)
def test_bounds_meet_sound_64(s: list[int], u: list[int], x: int) -> None:
    """Signed and unsigned bounds given together keep every value in both."""
    smin, smax, umin, umax = min(s), max(s), min(u), max(u)
    got = make(Tnum.unknown(), umin, umax, smin, smax)
    sx = x - (1 << 64) if x >> 63 else x
    if umin <= x <= umax and smin <= sx <= smax:
        assert got is not None and got.contains(x), (s, u, hex(x), got)


@settings(max_examples=400, deadline=None)
@given(st.lists(S32, min_size=2, max_size=2), st.lists(st.integers(0, 0xFFFFFFFF), min_size=2,
                                                       max_size=2), st.integers(0, 0xFFFFFFFF))
def test_bounds_meet_sound_32(s: list[int], u: list[int], x: int) -> None:
    s32min, s32max, u32min, u32max = min(s), max(s), min(u), max(u)
    got = make(Tnum.unknown(32), 0, 0xFFFFFFFF, 0, 0xFFFFFFFF, u32min, u32max, s32min, s32max)
    sx = x - (1 << 32) if x >> 31 else x
    if u32min <= x <= u32max and s32min <= sx <= s32max:
        assert got is not None and got.contains(x), (s, u, hex(x), got)


def test_bounds_deduced_across_the_sign_boundary() -> None:
    # s64 [-128, 127] and u64 <= 2**64 - 256: the negative part is excluded
    got = make(Tnum.unknown(), 0, M64 - 255, -128, 127)
    assert got is not None and (got.smin, got.smax, got.umin, got.umax) == (0, 127, 0, 127)
    # u64 >= 2**63: only the negative part is left
    got = make(Tnum.unknown(), 1 << 63, M64, -128, 127)
    assert got is not None and (got.smin, got.smax) == (-128, -1)
    # u32 <= 0x80000003 and s32 >= -3: [0, S32_MAX]
    got = make(Tnum.unknown(32), 0, 0xFFFFFFFF, 0, 0xFFFFFFFF, 0, 0x80000003, -3,
               (1 << 31) - 1)
    assert got is not None and (got.s32min, got.u32max) == (0, (1 << 31) - 1)
    # both parts overlap: nothing new
    got = make(Tnum.unknown(), 0, M64 - 127, -128, 127)
    assert got is not None and (got.smin, got.smax) == (-128, 127)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([8, 16, 32]), st.sampled_from([32, 64]), st.integers(0, M64),
       st.integers(0, 1 << 17), st.data())
def test_sext_of_a_range_sound(bits: int, w: int, lo: int, span: int,
                               data: st.DataObject) -> None:
    hi = min(lo + span, M64)
    a = Scalar.urange(lo, hi)
    x = data.draw(st.integers(lo, hi))
    v = width.sx(x & ((1 << bits) - 1), bits) & M64
    want = v if w == 64 else v & 0xFFFFFFFF
    assert sext(a, bits, w).contains(want), (bits, w, hex(lo), hex(hi), hex(x))


def test_sext_of_a_negative_range_is_exact() -> None:
    got = sext(Scalar.urange(0x80, 0x8F), 8, 32)
    assert (got.s32min, got.s32max, got.umin, got.umax) == (-128, -113, 0xFFFFFF80,
                                                            0xFFFFFF8F)
    got = sext(Scalar.urange(0x80, 0x8F), 8, 64)
    assert (got.smin, got.smax) == (-128, -113)
