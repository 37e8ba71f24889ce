"""Scalar values: a tnum plus signed and unsigned, 64- and 32-bit bounds.

:class:`Scalar` is the abstract value of a 64-bit register holding a number
(or of a pointer's offset).  Its eight bounds and its tnum are kept
consistent with each other by :func:`sync`, after the kernel's
``reg_bounds_sync`` (update bounds from the tnum, deduce signed from
unsigned, 32 from 64 bits and back, then narrow the tnum from the bounds).
It is a lattice: ``join``, ``meet``, ``leq`` and ``widen`` (to thresholds).
This module knows nothing of eBPF; the operations on scalars live in
:mod:`verifier.domains.arith` and :mod:`verifier.domains.compare`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from verifier.domains.tnum import M32, M64, Tnum

S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
_new = object.__new__
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1


def s64(x: int) -> int:
    x &= M64
    return x - (1 << 64) if x >> 63 else x


def s32(x: int) -> int:
    x &= M32
    return x - (1 << 32) if x >> 31 else x


class Thresholds:
    """Sorted landing points for widening, one list per bound kind."""

    __slots__ = ("u64", "s64", "u32", "s32")

    def __init__(self, constants: Iterable[int] = ()) -> None:
        vals = {0, 1}
        for c in constants:
            vals.update((c - 1, c, c + 1))
        self.u64 = sorted({v & M64 for v in vals})
        self.s64 = sorted({s64(v) for v in vals})
        self.u32 = sorted({v & M32 for v in vals})
        self.s32 = sorted({s32(v) for v in vals})


def _down(points: list[int], x: int, floor: int) -> int:
    i = bisect_right(points, x)
    return points[i - 1] if i else floor


def _up(points: list[int], x: int, ceil: int) -> int:
    i = bisect_left(points, x)
    return points[i] if i < len(points) else ceil


class Scalar:
    """A set of 64-bit values, over-approximated by bounds and a tnum."""

    __slots__ = ("t", "umin", "umax", "smin", "smax", "u32min", "u32max", "s32min", "s32max")

    def __init__(self, t: Tnum, umin: int, umax: int, smin: int, smax: int,
                 u32min: int, u32max: int, s32min: int, s32max: int) -> None:
        self.t = t
        self.umin, self.umax, self.smin, self.smax = umin, umax, smin, smax
        self.u32min, self.u32max, self.s32min, self.s32max = u32min, u32max, s32min, s32max

    # -- construction ------------------------------------------------------
    @staticmethod
    def const(value: int) -> Scalar:
        # fields set directly (no __init__ calls): constants are made at nearly every step
        value &= M64
        lo = value & M32
        sv = value - (1 << 64) if value >> 63 else value
        slo = lo - (1 << 32) if lo >> 31 else lo
        t = _new(Tnum)
        t.v, t.m = value, 0
        r = _new(Scalar)
        r.t, r.umin, r.umax, r.smin, r.smax = t, value, value, sv, sv
        r.u32min, r.u32max, r.s32min, r.s32max = lo, lo, slo, slo
        return r

    @staticmethod
    def unknown() -> Scalar:
        return _UNKNOWN

    @staticmethod
    def urange(lo: int, hi: int) -> Scalar:
        """Every value of the unsigned range ``[lo, hi]``."""
        r = Scalar(Tnum.range(lo, hi), lo, hi, S64_MIN, S64_MAX, 0, M32, S32_MIN, S32_MAX)
        return sync(r) or r

    @staticmethod
    def srange(lo: int, hi: int) -> Scalar:
        """Every value of the signed range ``[lo, hi]``."""
        r = Scalar(Tnum.unknown(), 0, M64, lo, hi, 0, M32, S32_MIN, S32_MAX)
        return sync(r) or r

    def key(self) -> tuple:
        return (self.t.v, self.t.m, self.umin, self.umax, self.smin, self.smax,
                self.u32min, self.u32max, self.s32min, self.s32max)

    def __eq__(self, o: object) -> bool:
        if self is o:
            return True
        return (isinstance(o, Scalar) and self.umin == o.umin and self.umax == o.umax
                and self.smin == o.smin and self.smax == o.smax and self.u32min == o.u32min
                and self.u32max == o.u32max and self.s32min == o.s32min
                and self.s32max == o.s32max and self.t.v == o.t.v and self.t.m == o.t.m)

    def __hash__(self) -> int:
        return hash(self.key())

    # -- queries -----------------------------------------------------------
    def is_const(self) -> bool:
        return self.t.m == 0

    @property
    def value(self) -> int:
        """The constant (unsigned) when :meth:`is_const`."""
        return self.t.v

    def contains(self, x: int) -> bool:
        x &= M64
        lo = x & M32
        return (self.t.contains(x) and self.umin <= x <= self.umax
                and self.smin <= s64(x) <= self.smax and self.u32min <= lo <= self.u32max
                and self.s32min <= s32(lo) <= self.s32max)

    def is_unknown(self) -> bool:
        return self.key() == _UNKNOWN.key()

    def __repr__(self) -> str:
        return describe(self)

    # -- lattice -----------------------------------------------------------
    def join(self, o: Scalar) -> Scalar:
        if self is o:
            return self
        r = _new(Scalar)  # fields set directly: joins run at every merge
        r.t = self.t.join(o.t)
        r.umin = self.umin if self.umin < o.umin else o.umin
        r.umax = self.umax if self.umax > o.umax else o.umax
        r.smin = self.smin if self.smin < o.smin else o.smin
        r.smax = self.smax if self.smax > o.smax else o.smax
        r.u32min = self.u32min if self.u32min < o.u32min else o.u32min
        r.u32max = self.u32max if self.u32max > o.u32max else o.u32max
        r.s32min = self.s32min if self.s32min < o.s32min else o.s32min
        r.s32max = self.s32max if self.s32max > o.s32max else o.s32max
        return r

    def meet(self, o: Scalar) -> Scalar | None:
        t = self.t.meet(o.t)
        if t is None:
            return None
        return sync(Scalar(t, max(self.umin, o.umin), min(self.umax, o.umax),
                           max(self.smin, o.smin), min(self.smax, o.smax),
                           max(self.u32min, o.u32min), min(self.u32max, o.u32max),
                           max(self.s32min, o.s32min), min(self.s32max, o.s32max)))

    def leq(self, o: Scalar) -> bool:
        return (self.t.leq(o.t) and o.umin <= self.umin and self.umax <= o.umax
                and o.smin <= self.smin and self.smax <= o.smax
                and o.u32min <= self.u32min and self.u32max <= o.u32max
                and o.s32min <= self.s32min and self.s32max <= o.s32max)

    def widen(self, o: Scalar, th: Thresholds) -> Scalar:
        """``self`` widened by ``o``: each bound that grew jumps to the next
        threshold (or to the end of its range); the tnum keeps the trailing
        bits known on both sides and, above them, only what the widened
        unsigned range allows.  Ascending chains are finite (thresholds are
        finite, and a tnum only ever gains unknown bits)."""
        if o.leq(self):
            return self
        umin = self.umin if o.umin >= self.umin else _down(th.u64, o.umin, 0)
        umax = self.umax if o.umax <= self.umax else _up(th.u64, o.umax, M64)
        j = self.t.join(o.t)
        if j.m:
            keep = (j.m & -j.m) - 1  # the bits below the lowest unknown one
            w = j.join(Tnum.range(umin, umax)) if umin <= umax else Tnum.unknown()
            j = Tnum(w.v | (j.v & keep), w.m & ~keep)
        return Scalar(
            j, umin, umax,
            self.smin if o.smin >= self.smin else _down(th.s64, o.smin, S64_MIN),
            self.smax if o.smax <= self.smax else _up(th.s64, o.smax, S64_MAX),
            self.u32min if o.u32min >= self.u32min else _down(th.u32, o.u32min, 0),
            self.u32max if o.u32max <= self.u32max else _up(th.u32, o.u32max, M32),
            self.s32min if o.s32min >= self.s32min else _down(th.s32, o.s32min, S32_MIN),
            self.s32max if o.s32max <= self.s32max else _up(th.s32, o.s32max, S32_MAX))


_UNKNOWN = Scalar(Tnum.unknown(), 0, M64, S64_MIN, S64_MAX, 0, M32, S32_MIN, S32_MAX)


def sync(r: Scalar) -> Scalar | None:
    """Make the bounds and tnum of ``r`` (a fresh object) agree; None when
    they prove the set empty.  The steps are the kernel's: bounds from the
    tnum, then (at most twice, until nothing changes) 32-bit bounds from
    64-bit ones, 64 from 32, signed from unsigned and back, then the tnum
    from the bounds and the bounds from the tnum once more.  Written out on
    local variables, sign conversions inline: it runs after nearly every
    abstract operation."""
    umin, umax, smin, smax = r.umin, r.umax, r.smin, r.smax
    u32min, u32max, s32min, s32max = r.u32min, r.u32max, r.s32min, r.s32max
    t = r.t
    tv, tm = t.v, t.m
    converged = False  # the first pass's bounds steps reached a fixpoint
    for final in (False, True):
        # bounds from the tnum
        lv, lm = tv & M32, tm & M32
        x = lv | (lm & _BIT31)
        if x & _BIT31:
            x -= _2_32
        if x > s32min:
            s32min = x
        x = lv | (lm & _LOW31)
        if x & _BIT31:
            x -= _2_32
        if x < s32max:
            s32max = x
        if lv > u32min:
            u32min = lv
        if lv | lm < u32max:
            u32max = lv | lm
        x = tv | (tm & _BIT63)
        if x & _BIT63:
            x -= _2_64
        if x > smin:
            smin = x
        x = tv | (tm & _LOW63)
        if x & _BIT63:
            x -= _2_64
        if x < smax:
            smax = x
        if tv > umin:
            umin = tv
        if tv | tm < umax:
            umax = tv | tm
        if umin > umax or smin > smax or u32min > u32max or s32min > s32max:
            return None
        for _ in range(1 if final else 2):
            b_umin, b_umax, b_smin, b_smax = umin, umax, smin, smax
            b_u32min, b_u32max, b_s32min, b_s32max = u32min, u32max, s32min, s32max
            # 32-bit bounds from the 64-bit ones (a, b: low halves, then signed)
            if umin >> 32 == umax >> 32:
                a, b = umin & M32, umax & M32
                if a > u32min:
                    u32min = a
                if b < u32max:
                    u32max = b
                if a & _BIT31:
                    a -= _2_32
                if b & _BIT31:
                    b -= _2_32
                if a <= b:
                    if a > s32min:
                        s32min = a
                    if b < s32max:
                        s32max = b
            if smin >> 32 == smax >> 32:
                a, b = smin & M32, smax & M32
                if a <= b:
                    if a > u32min:
                        u32min = a
                    if b < u32max:
                        u32max = b
                if a & _BIT31:
                    a -= _2_32
                if b & _BIT31:
                    b -= _2_32
                if a <= b:
                    if a > s32min:
                        s32min = a
                    if b < s32max:
                        s32max = b
            a, b = u32min & M32, u32max & M32
            if a & _BIT31:
                a -= _2_32
            if b & _BIT31:
                b -= _2_32
            if a <= b:
                if a > s32min:
                    s32min = a
                if b < s32max:
                    s32max = b
            a, b = s32min & M32, s32max & M32
            if a <= b:
                if a > u32min:
                    u32min = a
                if b < u32max:
                    u32max = b
            elif u32max < a:  # s32 crosses 0, u32 misses its negative part
                x = u32min - _2_32 if u32min & _BIT31 else u32min
                if x > s32min:
                    s32min = x
                if b < u32max:
                    u32max = b
            elif b < u32min:  # ... or its non-negative part
                x = u32max - _2_32 if u32max & _BIT31 else u32max
                if x < s32max:
                    s32max = x
                if a > u32min:
                    u32min = a
            if not final:
                # 64-bit bounds from the 32-bit ones
                x = (umin & _HIGH32) | u32min
                if x > umin:
                    umin = x
                x = (umax & _HIGH32) | u32max
                if x < umax:
                    umax = x
                x = ((smin >> 32) << 32) | u32min
                if x > smin:
                    smin = x
                x = ((smax >> 32) << 32) | u32max
                if x < smax:
                    smax = x
                if s32min >= 0 and smin >= S32_MIN and smax <= S32_MAX:
                    if s32min > smin:
                        smin = s32min
                    if s32max < smax:
                        smax = s32max
                    if s32min > umin:
                        umin = s32min
                    if s32max < umax:
                        umax = s32max
            # signed from unsigned and back
            a, b = umin & M64, umax & M64
            if a & _BIT63:
                a -= _2_64
            if b & _BIT63:
                b -= _2_64
            if a <= b:
                if a > smin:
                    smin = a
                if b < smax:
                    smax = b
            a, b = smin & M64, smax & M64
            if a <= b:
                if a > umin:
                    umin = a
                if b < umax:
                    umax = b
            elif umax < a:  # s64 crosses 0, u64 misses its negative part
                x = umin - _2_64 if umin & _BIT63 else umin
                if x > smin:
                    smin = x
                if b < umax:
                    umax = b
            elif b < umin:  # ... or its non-negative part
                x = umax - _2_64 if umax & _BIT63 else umax
                if x < smax:
                    smax = x
                if a > umin:
                    umin = a
            if final:
                break
            if umin > umax or smin > smax or u32min > u32max or s32min > s32max:
                return None
            if umin == b_umin and umax == b_umax and smin == b_smin and smax == b_smax \
                    and u32min == b_u32min and u32max == b_u32max and s32min == b_s32min \
                    and s32max == b_s32max:
                converged = True
                break
        if final:
            break
        pv, pm = tv, tm
        # the tnum from the bounds: meet it with the tnums of the ranges
        # (Tnum.range and Tnum.meet, written out)
        bits = (umin ^ umax).bit_length()
        rm = M64 if bits > 63 else (1 << bits) - 1
        rv = umin & ~rm
        if (tv ^ rv) & ~tm & ~rm:
            return None
        v64, m64 = (tv | rv) & ~(tm & rm), tm & rm
        bits = (u32min ^ u32max).bit_length()
        rm = (1 << bits) - 1
        rv = u32min & ~rm
        lv, lm = tv & M32, tm & M32
        if (lv ^ rv) & ~lm & ~rm:
            return None
        v32, m32 = (lv | rv) & ~(lm & rm), lm & rm
        tv = (v64 & _HIGH32) | v32
        tm = ((m64 & _HIGH32) | m32) & ~tv
        if converged and tv == pv and tm == pm:
            # every step only tightens, and with this tnum none did: the final
            # pass (a subset of the same steps) would change nothing either
            break
    if umin > umax or smin > smax or u32min > u32max or s32min > s32max:
        return None
    if tv != t.v or tm != t.m:
        r.t = Tnum(tv, tm)
    r.umin, r.umax, r.smin, r.smax = umin, umax, smin, smax
    r.u32min, r.u32max, r.s32min, r.s32max = u32min, u32max, s32min, s32max
    return r


_BIT31 = 1 << 31
_LOW31 = M32 >> 1
_2_32 = 1 << 32
_BIT63 = 1 << 63
_LOW63 = M64 >> 1
_HIGH32 = M64 & ~M32
_2_64 = 1 << 64


def make(t: Tnum, umin: int = 0, umax: int = M64, smin: int = S64_MIN, smax: int = S64_MAX,
         u32min: int = 0, u32max: int = M32, s32min: int = S32_MIN,
         s32max: int = S32_MAX) -> Scalar | None:
    """A synced scalar from parts (unnamed bounds unknown); None when empty."""
    if t.m == 0:  # a constant: the bounds either hold it or the set is empty
        c = Scalar.const(t.v)
        ok = (umin <= c.umin <= umax and smin <= c.smin <= smax and u32min <= c.u32min <= u32max
              and s32min <= c.s32min <= s32max)
        return c if ok else None
    r = _new(Scalar)  # Scalar(...) without the __init__ call
    r.t, r.umin, r.umax, r.smin, r.smax = t, umin, umax, smin, smax
    r.u32min, r.u32max, r.s32min, r.s32max = u32min, u32max, s32min, s32max
    return sync(r)


def describe(r: Scalar) -> str:
    """The kernel log's rendering: a constant, or its bounds and var_off."""
    if r.is_const():
        v = r.t.v
        return f"{s64(v)}" if s64(v) < 0 and s64(v) > -4096 else f"{v:#x}" if v > 9 else f"{v}"
    parts = []
    if r.smin != S64_MIN:
        parts.append(f"smin={r.smin}")
    if r.smax != S64_MAX:
        parts.append(f"smax={r.smax}")
    if r.umin != 0:
        parts.append(f"umin={r.umin}")
    if r.umax != M64:
        parts.append(f"umax={r.umax}")
    if (r.umin >> 32) != (r.umax >> 32) or r.umax > M32:
        if r.u32min != 0:
            parts.append(f"u32min={r.u32min}")
        if r.u32max != M32:
            parts.append(f"u32max={r.u32max}")
        if r.s32min != S32_MIN:
            parts.append(f"s32min={r.s32min}")
        if r.s32max != S32_MAX:
            parts.append(f"s32max={r.s32max}")
    if r.t.m != M64:
        parts.append(f"var_off=({r.t.v:#x}; {r.t.m:#x})")
    return ",".join(parts) if parts else "unknown"
