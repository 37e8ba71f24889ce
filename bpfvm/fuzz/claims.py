"""The verifier's range claims as run-time checks, for the fuzzer's probe.

:func:`range_checker` turns the facts of a verdict into ``check(pc, regs)
-> None | what does not hold``; :func:`specialized` writes the check of one
pc as straight-line Python with the claim's constants inlined and the
bounds every value meets left out, for the pcs a run executes often (a
loop body checked on every step).  This is the one module that knows the
shape of the verifier's facts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bpfvm.isa.bits import s32, s64

M64 = (1 << 64) - 1

Checker = Callable[[int, list[int]], str | None]


def range_checker(facts: Any) -> Checker | None:
    """``check(pc, regs) -> None | what does not hold`` for the verifier's facts.

    The message comes from ``facts.check(pc, regs)`` (r0..r10 at entry to
    pc); when the facts expose their per-pc register values (``facts.regs``)
    the common case -- every claim holds -- is decided by a table of the
    non-trivial scalar claims built once (``check.claims``: pc -> claims),
    without that call (``check.full``).  The pcs whose check always passes
    (no non-trivial claim) are in ``check.quiet``.
    """
    full = getattr(facts, "check", None)
    if not callable(full):
        return None
    table = getattr(facts, "regs", None)
    if not isinstance(table, dict):
        return full
    fast: dict[int, tuple[Claim, ...]] = {}
    # by id of the claimed value (values are shared): the claim without its register
    memo: dict[int, tuple | None] = {}
    get, miss = memo.get, memo  # memo itself is never a value
    for pc, vals in table.items():
        claims = []
        for reg, v in enumerate(vals):
            claim = get(id(v), miss)
            if claim is miss:
                c = _claim(v)
                claim = memo[id(v)] = None if c is None else c[1:]
            if claim is not None:
                claims.append((reg, *claim))
        fast[pc] = tuple(claims)

    def check(pc: int, regs: list[int]) -> str | None:
        claims = fast.get(pc)
        if claims is None:
            return full(pc, regs)
        return full(pc, regs) if breaks(claims, regs) else None

    check.quiet = frozenset(pc for pc, claims in fast.items()  # type: ignore[attr-defined]
                            if not claims)
    check.claims = fast  # type: ignore[attr-defined]
    check.full = full  # type: ignore[attr-defined]
    return check


def breaks(claims: tuple[Claim, ...], regs: list[int]) -> bool:
    """Some register of ``regs`` lies outside its claim."""
    for reg, nm, v, umin, umax, signed, low in claims:
        x = regs[reg]
        if x & nm != v or x < umin or x > umax:
            return True
        if signed is not None:
            sx = s64(x)
            if sx < signed[0] or sx > signed[1]:
                return True
        if low is not None:
            lx = x & 0xFFFFFFFF
            slx = s32(lx)
            if lx < low[0] or lx > low[1] or slx < low[2] or slx > low[3]:
                return True
    return False


# (reg, ~unknown bits, known bits, umin, umax, (smin, smax) or None, 32-bit bounds or None)
Claim = tuple[int, int, int, int, int, tuple[int, int] | None, tuple[int, ...] | None]
_2_64 = 1 << 64
_S64 = (-(1 << 63), (1 << 63) - 1)
_LOW32 = (0, 0xFFFFFFFF, -(1 << 31), (1 << 31) - 1)


def _claim(v: Any) -> Claim | None:
    """The scalar bounds a claimed value states (None: no claim), with the
    bounds that every value meets left out."""
    num = getattr(v, "num", None)
    if num is None or getattr(getattr(v, "kind", None), "name", "") != "SCALAR" \
            or num.is_unknown():
        return None
    signed = (num.smin, num.smax)
    low = (num.u32min, num.u32max, num.s32min, num.s32max)
    return (0, ~num.t.m & M64, num.t.v, num.umin, num.umax,
            None if signed == _S64 else signed, None if low == _LOW32 else low)


def specialized(pc: int, claims: tuple[Claim, ...], inner: Callable[[], int], r: list[int],
                probe: Any, full: Checker) -> Callable[[], int]:
    """A handler that checks ``claims`` on the registers ``r`` before
    running ``inner``; on a miss it records ``full(pc, r)`` in
    ``probe.violation`` (checks stop once one is recorded)."""
    fails = " or ".join(_misses(claims)) or "False"
    src = ("def make(inner, r, g, full, pc):\n"
           "    def step():\n"
           f"        if g.violation is None and ({fails}):\n"
           "            g.violation = full(pc, r)\n"
           "        return inner()\n"
           "    return step\n")
    scope: dict[str, Any] = {}
    exec(compile(src, f"<claims at pc {pc}>", "exec"), scope)
    return scope["make"](inner, r, probe, full, pc)


def _misses(claims: tuple[Claim, ...]) -> list[str]:
    """Python conditions, one per bound, true when a register breaks its claim."""
    out = []
    for reg, nm, v, umin, umax, signed, low in claims:
        x = f"r[{reg}]"
        if nm == M64:
            out.append(f"{x} != {v}")
            continue
        if nm:
            out.append(f"{x} & {nm} != {v}")
        if umin:
            out.append(f"{x} < {umin}")
        if umax != M64:
            out.append(f"{x} > {umax}")
        if signed is not None:
            sx = f"({x} - {_2_64} if {x} >> 63 else {x})"
            out.append(f"not {signed[0]} <= {sx} <= {signed[1]}")
        if low is not None:
            lx = f"({x} & 0xFFFFFFFF)"
            slx = f"({lx} - 0x100000000 if {lx} >> 31 else {lx})"
            out.append(f"not {low[0]} <= {lx} <= {low[1]}")
            out.append(f"not {low[2]} <= {slx} <= {low[3]}")
    return out

