"""Refinement of two scalars by the outcome of a comparison (32 or 64 bit).

:func:`refine` takes the operands of a conditional jump and the edge taken
(or not) and returns both operands narrowed by what the edge implies, or
None when the edge cannot be taken.  The 32-bit forms narrow the low-half
bounds; :func:`~verifier.domains.interval.sync` carries that over to the 64-bit
bounds when the high half is known.  Operation names are the jump names
("jeq", "jsgt", "jset", ...); this module imports nothing of eBPF.
"""

from __future__ import annotations

from verifier.domains.arith import View
from verifier.domains.interval import Scalar, make, s32, s64
from verifier.domains.tnum import M32, Tnum

_new = tuple.__new__  # a View without the Python-level NamedTuple constructor

NEGATE = {"jeq": "jne", "jne": "jeq", "jgt": "jle", "jle": "jgt", "jge": "jlt", "jlt": "jge",
          "jsgt": "jsle", "jsle": "jsgt", "jsge": "jslt", "jslt": "jsge",
          "jset": "jnset", "jnset": "jset"}
# a OP b  <=>  b SWAP[OP] a
SWAP = {"jeq": "jeq", "jne": "jne", "jgt": "jlt", "jlt": "jgt", "jge": "jle", "jle": "jge",
        "jsgt": "jslt", "jslt": "jsgt", "jsge": "jsle", "jsle": "jsge"}

Pair = tuple[View, View] | None


def _eq(a: View, b: View, w: int) -> Pair:
    t = a.t.meet(b.t)
    if t is None:
        return None
    v = _new(View, (t, max(a.umin, b.umin), min(a.umax, b.umax), max(a.smin, b.smin),
             min(a.smax, b.smax)))
    return v, v


def _ne_one(a: View, k: int, w: int) -> View:
    umin, umax, smin, smax = a.umin, a.umax, a.smin, a.smax
    sk = s64(k) if w == 64 else s32(k)
    if umin == k:
        umin += 1
    if umax == k:
        umax -= 1
    if smin == sk:
        smin += 1
    if smax == sk:
        smax -= 1
    return _new(View, (a.t, umin, umax, smin, smax))


def _ne(a: View, b: View, w: int) -> Pair:
    if a.t.m == 0 and b.t.m == 0:
        return None if a.t.v == b.t.v else (a, b)
    if b.t.m == 0:
        return _ne_one(a, b.t.v, w), b
    if a.t.m == 0:
        return a, _ne_one(b, a.t.v, w)
    return a, b


def _gt(a: View, b: View, w: int, strict: int) -> Pair:
    return (_new(View, (a.t, max(a.umin, b.umin + strict), a.umax, a.smin, a.smax)),
            _new(View, (b.t, b.umin, min(b.umax, a.umax - strict), b.smin, b.smax)))


def _sgt(a: View, b: View, w: int, strict: int) -> Pair:
    return (_new(View, (a.t, a.umin, a.umax, max(a.smin, b.smin + strict), a.smax)),
            _new(View, (b.t, b.umin, b.umax, b.smin, min(b.smax, a.smax - strict))))


def _set(a: View, b: View, w: int) -> Pair:
    if b.t.m == 0:
        k = b.t.v
        if not (a.t.v | a.t.m) & k:
            return None
        if k and not k & (k - 1) and not a.t.v & k:
            return _new(View, (Tnum(a.t.v | k, a.t.m & ~k), a.umin, a.umax, a.smin, a.smax)), b
    return a, b


def _nset(a: View, b: View, w: int) -> Pair:
    if b.t.m == 0:
        k = b.t.v
        if a.t.v & k:
            return None
        return _new(View, (Tnum(a.t.v & ~k, a.t.m & ~k), a.umin, a.umax, a.smin, a.smax)), b
    if a.t.m == 0 and b.t.m == 0 and a.t.v & b.t.v:
        return None
    return a, b


# the order comparisons: (operands swapped, signed, strict); a < b is b > a
_ORDER = {"jgt": (False, False, 1), "jge": (False, False, 0), "jlt": (True, False, 1),
          "jle": (True, False, 0), "jsgt": (False, True, 1), "jsge": (False, True, 0),
          "jslt": (True, True, 1), "jsle": (True, True, 0)}


def _apply(op: str, a: View, b: View, w: int) -> Pair:
    order = _ORDER.get(op)
    if order is not None:
        swap, signed, strict = order
        fn = _sgt if signed else _gt
        if swap:
            res = fn(b, a, w, strict)
            return None if res is None else (res[1], res[0])
        return fn(a, b, w, strict)
    if op == "jeq":
        return _eq(a, b, w)
    if op == "jne":
        return _ne(a, b, w)
    if op == "jset":
        return _set(a, b, w)
    return _nset(a, b, w)


def _back(orig: Scalar, v: View, w: int) -> Scalar | None:
    ot = orig.t
    if w == 64:
        t = ot if v.t is ot else v.t.meet(ot)  # meet(x, x) is x
        if t is None:
            return None
        return make(t, v.umin, v.umax, v.smin, v.smax, orig.u32min, orig.u32max,
                    orig.s32min, orig.s32max)
    vt = v.t
    if vt.v == ot.v & M32 and vt.m == ot.m & M32:  # the low half unchanged: so is the tnum
        return make(ot, orig.umin, orig.umax, orig.smin, orig.smax,
                    v.umin, v.umax, v.smin, v.smax)
    low = vt.meet(ot.subreg())
    if low is None:
        return None
    return make(ot.with_subreg(low), orig.umin, orig.umax, orig.smin, orig.smax,
                v.umin, v.umax, v.smin, v.smax)


def refine(op: str, a: Scalar, b: Scalar, w: int, taken: bool) -> tuple[Scalar, Scalar] | None:
    """``(a', b')`` narrowed by ``a OP b`` being ``taken`` (or not); None when
    that outcome is impossible."""
    if not taken:
        op = NEGATE[op]
    if w == 64:  # view(a, w), view(b, w), made here
        va = _new(View, (a.t, a.umin, a.umax, a.smin, a.smax))
        vb = _new(View, (b.t, b.umin, b.umax, b.smin, b.smax))
    else:
        at, bt = a.t, b.t
        va = _new(View, (Tnum(at.v & M32, at.m & M32), a.u32min, a.u32max, a.s32min, a.s32max))
        vb = _new(View, (Tnum(bt.v & M32, bt.m & M32), b.u32min, b.u32max, b.s32min, b.s32max))
    res = _apply(op, va, vb, w)
    if res is None:
        return None
    ra = _back(a, res[0], w)
    if ra is None:
        return None
    rb = _back(b, res[1], w)
    if rb is None:
        return None
    return ra, rb


def decided(op: str, a: Scalar, b: Scalar, w: int) -> bool | None:
    """True/False when ``a OP b`` has the same outcome for every value, else None."""
    t = refine(op, a, b, w, True) is not None
    f = refine(op, a, b, w, False) is not None
    if t and f:
        return None
    return t

