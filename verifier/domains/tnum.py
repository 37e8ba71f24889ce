"""Tristate numbers: which bits of a 64-bit value are known, and to what.

A :class:`Tnum` is the kernel's ``struct tnum``: ``v`` holds the known bit
values, ``m`` the unknown bits (``v & m == 0``).  It is a lattice (join =
union of the concrete sets' hull, meet = intersection, ``leq`` = inclusion)
with the arithmetic of ``kernel/bpf/tnum.c``.  This module knows nothing of
eBPF instructions; widths other than 64 bits are handled by casting.
"""

from __future__ import annotations

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
_new = object.__new__


class Tnum:
    """Known bits ``v`` and unknown bits ``m`` of a 64-bit number."""

    __slots__ = ("v", "m")

    def __init__(self, v: int, m: int) -> None:
        self.v = v & ~m & M64
        self.m = m & M64

    # -- construction ------------------------------------------------------
    @staticmethod
    def const(value: int) -> Tnum:
        return Tnum(value & M64, 0)

    @staticmethod
    def unknown(bits: int = 64) -> Tnum:
        return Tnum(0, (1 << bits) - 1)

    @staticmethod
    def range(lo: int, hi: int) -> Tnum:
        """The smallest tnum holding every value of ``[lo, hi]`` (unsigned)."""
        chi = lo ^ hi
        bits = chi.bit_length()
        if bits > 63:
            return Tnum(0, M64)
        delta = (1 << bits) - 1
        return Tnum(lo & ~delta, delta)

    # -- queries -----------------------------------------------------------
    def is_const(self) -> bool:
        return self.m == 0

    def contains(self, value: int) -> bool:
        return (value & ~self.m & M64) == self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tnum) and self.v == other.v and self.m == other.m

    def __hash__(self) -> int:
        return hash((self.v, self.m))

    def __repr__(self) -> str:
        return f"({self.v:#x}; {self.m:#x})"

    # -- lattice -----------------------------------------------------------
    def join(self, o: Tnum) -> Tnum:
        mu = ((self.v ^ o.v) | self.m | o.m) & M64
        t = _new(Tnum)  # Tnum(self.v & o.v, mu), without the __init__ call
        t.v, t.m = self.v & o.v & ~mu & M64, mu
        return t

    def meet(self, o: Tnum) -> Tnum | None:
        """Intersection, or None when the known bits disagree."""
        if (self.v ^ o.v) & ~self.m & ~o.m:
            return None
        m = self.m & o.m & M64
        t = _new(Tnum)  # Tnum(self.v | o.v, m), without the __init__ call
        t.v, t.m = (self.v | o.v) & ~m & M64, m
        return t

    def leq(self, o: Tnum) -> bool:
        """Every value of ``self`` is a value of ``o``."""
        if self.m & ~o.m:
            return False
        return (self.v & ~o.m) == o.v

    def widen(self, o: Tnum) -> Tnum:
        """Join, then forget every bit above the lowest bit that changed, so
        that chains are short while trailing known bits (alignment) survive."""
        j = self.join(o)
        if j == self:
            return self
        low = (j.m & -j.m).bit_length() - 1  # lowest unknown bit
        keep = (1 << low) - 1
        return Tnum(j.v & keep, M64 & ~keep)

    # -- arithmetic (kernel/bpf/tnum.c) -------------------------------------
    def add(self, o: Tnum) -> Tnum:
        sm = self.m + o.m
        sv = self.v + o.v
        chi = ((sm + sv) ^ sv) & M64
        mu = (chi | self.m | o.m) & M64
        t = _new(Tnum)  # Tnum(sv, mu), without the __init__ call
        t.v, t.m = sv & ~mu & M64, mu
        return t

    def sub(self, o: Tnum) -> Tnum:
        dv = (self.v - o.v) & M64
        alpha = (dv + self.m) & M64
        beta = (dv - o.m) & M64
        mu = (alpha ^ beta) | self.m | o.m
        return Tnum(dv, mu)

    def and_(self, o: Tnum) -> Tnum:
        alpha = self.v | self.m
        beta = o.v | o.m
        v = self.v & o.v
        return Tnum(v, alpha & beta & ~v)

    def or_(self, o: Tnum) -> Tnum:
        v = self.v | o.v
        return Tnum(v, (self.m | o.m) & ~v)

    def xor(self, o: Tnum) -> Tnum:
        mu = self.m | o.m
        return Tnum((self.v ^ o.v) & ~mu, mu)

    def mul(self, o: Tnum) -> Tnum:
        """The kernel's tnum_mul: the known product, plus the unknown partial
        products accumulated with :meth:`add` (here on ints: the loop makes
        no Tnum per bit)."""
        if self.m == 0 and o.m == 0:
            return Tnum.const(self.v * o.v)
        acc_v = (self.v * o.v) & M64
        mv = mm = 0  # acc_m
        av, am, bv, bm = self.v, self.m, o.v, o.m
        while av or am:
            if av & 1:
                x = bm
            elif am & 1:
                x = (bv | bm) & M64
            else:
                x = -1
            if x >= 0:  # acc_m = acc_m.add(Tnum(0, x))
                chi = ((mm + x + mv) ^ mv) & M64
                mu = (chi | mm | x) & M64
                mv, mm = mv & ~mu & M64, mu
            av, am = av >> 1, am >> 1
            av &= ~am
            bv, bm = (bv << 1) & M64, (bm << 1) & M64
            bv &= ~bm
        return Tnum(acc_v, 0).add(Tnum(mv, mm))

    def lshift(self, s: int) -> Tnum:
        return Tnum((self.v << s) & M64, (self.m << s) & M64)

    def rshift(self, s: int) -> Tnum:
        return Tnum(self.v >> s, self.m >> s)

    def arshift(self, s: int, bits: int = 64) -> Tnum:
        """Arithmetic shift right of the low ``bits`` bits (zero-extended)."""
        mask = (1 << bits) - 1

        def sext(x: int) -> int:
            x &= mask
            return x - (1 << bits) if x >> (bits - 1) else x

        return Tnum((sext(self.v) >> s) & mask, (sext(self.m) >> s) & mask)

    # -- widths --------------------------------------------------------------
    def cast(self, size: int) -> Tnum:
        """Keep the low ``size`` bytes (zero-extend)."""
        mask = (1 << (8 * size)) - 1
        return Tnum(self.v & mask, self.m & mask)

    def subreg(self) -> Tnum:
        return Tnum(self.v & M32, self.m & M32)

    def clear_subreg(self) -> Tnum:
        return Tnum(self.v & ~M32, self.m & ~M32)

    def with_subreg(self, low: Tnum) -> Tnum:
        """The high half of ``self`` with the low half of ``low``."""
        return Tnum((self.v & ~M32) | (low.v & M32), (self.m & ~M32) | (low.m & M32))
