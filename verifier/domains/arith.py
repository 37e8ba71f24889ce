"""Arithmetic on :class:`~verifier.domains.interval.Scalar` values (sound, 32 and 64 bit).

Each operation is computed on a *view* of its operands at the operation's
width (64 bits: the full tnum and 64-bit bounds; 32 bits: the low half),
then turned back into a scalar: 32-bit results are zero-extended, 64-bit
results also get 32-bit bounds where the low half only depends on the low
halves of the operands.  Shift amounts are masked, division by zero gives
0 and modulo by zero leaves the dividend, as in RFC 9669.  Operation names
are plain strings ("add", "arsh", ...); this module imports nothing of eBPF.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from verifier.domains.interval import Scalar, make
from verifier.domains.tnum import M32, M64, Tnum


class View(NamedTuple):
    t: Tnum
    umin: int
    umax: int
    smin: int
    smax: int


_MASK = {64: M64, 32: M32}
_SMIN = {64: -(1 << 63), 32: -(1 << 31)}
_SMAX = {64: (1 << 63) - 1, 32: (1 << 31) - 1}
_new = tuple.__new__  # a View without the Python-level NamedTuple constructor


def _signed(x: int, w: int) -> int:
    x &= _MASK[w]
    return x - (1 << w) if x > _SMAX[w] else x


def view(a: Scalar, w: int) -> View:
    if w == 64:
        return _new(View, (a.t, a.umin, a.umax, a.smin, a.smax))
    t = a.t
    return _new(View, (Tnum(t.v & M32, t.m & M32), a.u32min, a.u32max, a.s32min, a.s32max))


def _full(t: Tnum, w: int) -> View:
    return _new(View, (t, 0, _MASK[w], _SMIN[w], _SMAX[w]))


def _wrap_u(lo: int, hi: int, w: int) -> tuple[int, int]:
    """The exact integer range [lo, hi] taken modulo 2**w, as one interval."""
    mask = _MASK[w]
    if hi - lo > mask or (lo >> w) != (hi >> w):
        return 0, mask
    return lo & mask, hi & mask


def _wrap_s(lo: int, hi: int, w: int) -> tuple[int, int]:
    span = 1 << w
    smin = _SMIN[w]
    if hi - lo >= span or (lo - smin) // span != (hi - smin) // span:
        return smin, _SMAX[w]
    return _signed(lo, w), _signed(hi, w)


def _add(a: View, b: View, w: int) -> View:
    t = a.t.add(b.t)
    # _wrap_u and _wrap_s, inline: additions are the commonest operation
    mask, smin, span = _MASK[w], _SMIN[w], 1 << w
    lo, hi = a.umin + b.umin, a.umax + b.umax
    if hi - lo > mask or (lo >> w) != (hi >> w):
        ulo, uhi = 0, mask
    else:
        ulo, uhi = lo & mask, hi & mask
    lo, hi = a.smin + b.smin, a.smax + b.smax
    if hi - lo >= span or (lo - smin) // span != (hi - smin) // span:
        return _new(View, (t, ulo, uhi, smin, _SMAX[w]))
    return _new(View, (t, ulo, uhi, _signed(lo, w), _signed(hi, w)))


def _sub(a: View, b: View, w: int) -> View:
    t = a.t.sub(b.t)
    return _new(View, (t, *_wrap_u(a.umin - b.umax, a.umax - b.umin, w),
                       *_wrap_s(a.smin - b.smax, a.smax - b.smin, w)))


def _mul(a: View, b: View, w: int) -> View:
    t = a.t.mul(b.t)
    corners = (a.smin * b.smin, a.smin * b.smax, a.smax * b.smin, a.smax * b.smax)
    return _new(View, (t, *_wrap_u(a.umin * b.umin, a.umax * b.umax, w),
                *_wrap_s(min(corners), max(corners), w)))


def _and(a: View, b: View, w: int) -> View:
    t = a.t.and_(b.t)
    smin, smax = _SMIN[w], _SMAX[w]
    if a.smin >= 0 and b.smin >= 0:
        smin, smax = 0, min(a.smax, b.smax)
    elif a.smin >= 0:
        smin, smax = 0, a.smax
    elif b.smin >= 0:
        smin, smax = 0, b.smax
    return _new(View, (t, t.v, min(a.umax, b.umax), smin, smax))


def _or(a: View, b: View, w: int) -> View:
    t = a.t.or_(b.t)
    umin, umax = max(a.umin, b.umin), t.v | t.m
    if a.smin >= 0 and b.smin >= 0:
        return _new(View, (t, umin, umax, umin, umax))
    return _new(View, (t, umin, umax, _SMIN[w], _SMAX[w]))


def _xor(a: View, b: View, w: int) -> View:
    t = a.t.xor(b.t)
    umin, umax = t.v, t.v | t.m
    if a.smin >= 0 and b.smin >= 0:
        return _new(View, (t, umin, umax, umin, umax))
    return _new(View, (t, umin, umax, _SMIN[w], _SMAX[w]))


def _shift_range(b: View, w: int) -> tuple[int, int]:
    if b.umax < w:
        return b.umin, b.umax
    return 0, w - 1


def _lsh(a: View, b: View, w: int) -> View:
    lo, hi = _shift_range(b, w)
    if lo == hi:
        t = a.t.lshift(lo)
        if t.m == 0 and w == 32:
            t = Tnum(t.v & M32, 0)
    else:
        t = Tnum.unknown(w)
    t = Tnum(t.v & _MASK[w], t.m & _MASK[w])
    if a.umax << hi <= _MASK[w]:
        return _new(View, (t, a.umin << lo, a.umax << hi, _SMIN[w], _SMAX[w]))
    return _full(t, w)


def _rsh(a: View, b: View, w: int) -> View:
    lo, hi = _shift_range(b, w)
    t = a.t.rshift(lo) if lo == hi else Tnum.range(0, a.umax)
    return _new(View, (t, a.umin >> hi, a.umax >> lo, _SMIN[w], _SMAX[w]))


def _arsh(a: View, b: View, w: int) -> View:
    lo, hi = _shift_range(b, w)
    t = a.t.arshift(lo, w) if lo == hi else Tnum.unknown(w)
    smin = min(a.smin >> lo, a.smin >> hi)
    smax = max(a.smax >> lo, a.smax >> hi)
    return _new(View, (t, 0, _MASK[w], smin, smax))


def _div(a: View, b: View, w: int) -> View:
    if b.umin > 0:
        lo, hi = a.umin // b.umax, a.umax // b.umin
    else:
        lo, hi = 0, a.umax
    return _new(View, (Tnum.range(lo, hi), lo, hi, _SMIN[w], _SMAX[w]))


def _mod(a: View, b: View, w: int) -> View:
    if b.umin > 0 and a.umax < b.umin:
        return a
    hi = min(a.umax, b.umax - 1) if b.umin > 0 else a.umax
    return _new(View, (Tnum.range(0, hi), 0, hi, _SMIN[w], _SMAX[w]))


def _const_op(fn: Callable[[int, int, int], int]) -> Callable[[View, View, int], View]:
    """An operation known only on constants (else any value)."""

    def op(a: View, b: View, w: int) -> View:
        if a.t.m == 0 and b.t.m == 0:
            v = fn(_signed(a.t.v, w), _signed(b.t.v, w), w) & _MASK[w]
            return _new(View, (Tnum.const(v), v, v, _signed(v, w), _signed(v, w)))
        if fn is _sdiv_c or b.t.m != 0 or b.t.v == 0:
            return _full(Tnum.unknown(w), w)
        k = abs(_signed(b.t.v, w))  # smod by a non-zero constant
        if a.smin >= 0:
            return _new(View, (Tnum.range(0, k - 1), 0, k - 1, 0, k - 1))
        return _new(View, (Tnum.unknown(w), 0, _MASK[w], -(k - 1), k - 1))

    return op


def _sdiv_c(x: int, y: int, w: int) -> int:
    if y == 0:
        return 0
    if x == _SMIN[w] and y == -1:
        return x
    q = abs(x) // abs(y)
    return -q if (x < 0) != (y < 0) else q


def _smod_c(x: int, y: int, w: int) -> int:
    if y == 0:
        return x
    if y == -1:
        return 0
    r = abs(x) % abs(y)
    return -r if x < 0 else r


OPS: dict[str, Callable[[View, View, int], View]] = {
    "add": _add, "sub": _sub, "mul": _mul, "and": _and, "or": _or, "xor": _xor,
    "lsh": _lsh, "rsh": _rsh, "arsh": _arsh, "div": _div, "mod": _mod,
    "sdiv": _const_op(_sdiv_c), "smod": _const_op(_smod_c),
}
# operations whose low 32 result bits depend only on the operands' low 32 bits (not
# lsh: a 64-bit shift by 32..63 clears them, a 32-bit view of the amount cannot tell)
_LOW_ONLY = frozenset({"add", "sub", "mul", "and", "or", "xor"})


def from_view(v: View, w: int, low: View | None = None) -> Scalar:
    """A scalar from a result view (zero-extended for 32 bits)."""
    if w == 32:
        r = make(Tnum(v.t.v & M32, v.t.m & M32), v.umin, v.umax, v.umin, v.umax,
                 v.umin, v.umax, v.smin, v.smax)
    elif low is not None:
        # v.t.with_subreg(low.t.meet(v.t.subreg()) or v.t.subreg()), on ints
        tv, tm = v.t.v, v.t.m
        sv, sm = tv & M32, tm & M32
        lv, lm = low.t.v, low.t.m
        if not (lv ^ sv) & ~lm & ~sm:
            sm &= lm
            sv = (lv | sv) & ~sm & M64
        tm = (tm & ~M32) | (sm & M32)
        r = make(Tnum((tv & ~M32) | (sv & M32), tm), v.umin, v.umax,
                 v.smin, v.smax, low.umin, low.umax, low.smin, low.smax)
    else:
        r = make(v.t, v.umin, v.umax, v.smin, v.smax)
    return r if r is not None else Scalar.unknown() if w == 64 else Scalar.urange(0, M32)


def _fold_arsh(x: int, s: int, w: int) -> int:
    return _signed(x, w) >> s


# exact results on constants (x, y already cut to w bits; y masked for shifts)
_FOLD: dict[str, Callable[[int, int, int], int]] = {
    "add": lambda x, y, w: x + y, "sub": lambda x, y, w: x - y, "mul": lambda x, y, w: x * y,
    "and": lambda x, y, w: x & y, "or": lambda x, y, w: x | y, "xor": lambda x, y, w: x ^ y,
    "lsh": lambda x, y, w: x << (y & (w - 1)), "rsh": lambda x, y, w: x >> (y & (w - 1)),
    "arsh": lambda x, y, w: _fold_arsh(x, y & (w - 1), w),
    "div": lambda x, y, w: x // y if y else 0, "mod": lambda x, y, w: x % y if y else x,
}


def alu(op: str, a: Scalar, b: Scalar, w: int) -> Scalar:
    """``a OP b`` at width ``w`` (32-bit results zero-extended)."""
    fold = _FOLD.get(op)
    if fold is not None and a.t.m == 0 and b.t.m == 0:
        m = _MASK[w]
        return Scalar.const(fold(a.t.v & m, b.t.v & m, w) & m)
    fn = OPS[op]
    at, bt = a.t, b.t
    if w == 64:  # the views, made here: view(x, 64), and view(x, 32) when needed
        res = fn(_new(View, (at, a.umin, a.umax, a.smin, a.smax)),
                 _new(View, (bt, b.umin, b.umax, b.smin, b.smax)), 64)
        if op not in _LOW_ONLY:
            return from_view(res, 64, None)
    a32 = _new(View, (Tnum(at.v & M32, at.m & M32), a.u32min, a.u32max, a.s32min, a.s32max))
    b32 = _new(View, (Tnum(bt.v & M32, bt.m & M32), b.u32min, b.u32max, b.s32min, b.s32max))
    if w == 64:
        return from_view(res, 64, fn(a32, b32, 32))
    return from_view(fn(a32, b32, 32), 32)


def neg(a: Scalar, w: int) -> Scalar:
    return alu("sub", Scalar.const(0), a, w)


def zext32(a: Scalar) -> Scalar:
    """The low 32 bits of ``a``, zero-extended (``w1 = w1``)."""
    return from_view(view(a, 32), 32)


def sext(a: Scalar, bits: int, w: int) -> Scalar:
    """Sign-extend the low ``bits`` bits of ``a`` to width ``w``."""
    half = 1 << (bits - 1)
    mask = (1 << bits) - 1
    if a.is_const():
        v = a.value & mask
        v = v - (1 << bits) if v & half else v
        return Scalar.const(v & _MASK[w])
    if a.umax < half:
        return a if w == 64 else zext32(a)
    if half <= a.umin and a.umax <= mask:  # every value has the sign bit set
        lo, hi = a.umin - (1 << bits), a.umax - (1 << bits)
        if w == 64:
            return Scalar.srange(lo, hi)
        r = make(Tnum.unknown(32), 0, M32, 0, M32, lo & M32, hi & M32, lo, hi)
        if r is not None:
            return r
    if w == 64:
        return Scalar.srange(-half, half - 1)
    r = make(Tnum.unknown(32), 0, M32, 0, M32, 0, M32, -half, half - 1)
    return r if r is not None else Scalar.urange(0, M32)


def truncate(a: Scalar, size: int) -> Scalar:
    """The low ``size`` bytes of ``a`` (zero-extended)."""
    if size == 8:
        return a
    return alu("and", a, Scalar.const((1 << (8 * size)) - 1), 64)


def bswap(a: Scalar, bits: int) -> Scalar:
    """Reverse the low ``bits`` bits' bytes (result zero-extended)."""
    if a.is_const():
        v = a.value & ((1 << bits) - 1)
        return Scalar.const(int.from_bytes(v.to_bytes(bits // 8, "little"), "big"))
    return Scalar.urange(0, (1 << bits) - 1)


def loaded(size: int, signed: bool) -> Scalar:
    """Any value a load of ``size`` bytes may give (sign- or zero-extended)."""
    return _LOADED[(size, signed)]


def _loaded(size: int, signed: bool) -> Scalar:
    if size == 8:
        return Scalar.unknown()
    if signed:
        half = 1 << (8 * size - 1)
        return Scalar.srange(-half, half - 1)
    return Scalar.urange(0, (1 << (8 * size)) - 1)


# made once: scalars are never changed once built
_LOADED = {(size, signed): _loaded(size, signed)
           for size in (1, 2, 4, 8) for signed in (False, True)}
