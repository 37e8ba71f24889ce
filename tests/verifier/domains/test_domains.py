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
from verifier.domains.interval import Scalar, Thresholds
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
