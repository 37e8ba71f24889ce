"""Live registers, and the points where the analysis may keep states apart.

A register is live at a pc when some path from there reads it before it
is written.  The analysis keeps the states that reach a join point (a pc
with two or more predecessors in its function, a function entry that is
also a jump target, or the pc after a local call, where a callee's exits
meet) apart when they differ in the kind of a live register: a pointer on
one path and a scalar on another, for instance.  Elsewhere a state keeps
the partition of its predecessor.  Liveness here is an over-approximation
(an unknown helper reads r1-r5, an atomic operation r0): it only decides
which states are kept apart, never what is safe.
"""

from __future__ import annotations

from bpfvm import isa
from bpfvm.helpers import HelperTable
from verifier.cfg import Code

ARGS = 0b111110  # r1-r5
CLOBBERED = 0b111111  # r0-r5, written by a call
R0 = 1
R6 = 1 << 6
NREGS = 10  # r0-r9 (r10 is the frame pointer)

_K = isa.Kind


def _uses(kind: isa.Kind, dst: int, src: int, src_reg: bool) -> tuple[int, int]:
    """The registers an instruction reads and those it surely writes, as masks."""
    s = 1 << src if src_reg else 0
    d = 1 << dst
    if kind is _K.ALU:
        return d | s, d
    if kind in (_K.NEG, _K.END):
        return d, d
    if kind in (_K.MOV, _K.MOVSX):
        return s, d
    if kind is _K.JCOND:
        return d | s, 0
    if kind is _K.CALL_LOCAL:
        return ARGS, CLOBBERED
    if kind is _K.CALLX:
        return ARGS | d, CLOBBERED
    if kind is _K.EXIT:
        return R0, 0
    if kind is _K.LDDW:
        return 0, d
    if kind is _K.LDX:
        return 1 << src, d
    if kind is _K.ST:
        return d, 0
    if kind is _K.STX:
        return d | (1 << src), 0
    if kind is _K.ATOMIC:  # cmpxchg compares with r0
        return d | (1 << src) | R0, 0
    if kind in (_K.LDABS, _K.LDIND):
        return R6 | (1 << src), R0
    return 0, 0  # JA


_USES: dict[tuple, tuple[int, int]] = {}  # (kind, dst, src, src_reg) -> _uses(...)


def live_in(code: Code, helpers: HelperTable | None = None) -> list[int]:
    """For each pc, the mask of registers live on entry (0 where unreached).
    A helper call reads its arguments (``helpers`` given; else r1-r5)."""
    n = len(code.insns)
    gen = [0] * n
    kill = [0] * n
    specs, insns, known = code.specs, code.insns, _USES
    for pc in code.order:
        spec = specs[pc]
        if spec is not None:
            _op, dst, src, _off, imm = insns[pc]
            k = (spec.kind, dst, src, spec.src_reg)
            if spec.kind is _K.CALL:
                h = helpers.get(imm) if helpers is not None else None
                got = (ARGS if h is None else (1 << len(h.args) + 1) - 2, CLOBBERED)
            else:
                got = known.get(k)
                if got is None:
                    got = known[k] = _uses(*k)
            gen[pc], kill[pc] = got
    live = [0] * n
    succ = code.succ
    todo = list(code.order)  # backwards, by rank: one pass without loops
    changed = True
    while changed:
        changed = False
        for pc in reversed(todo):
            out = 0
            for t in succ[pc]:
                out |= live[t]
            new = gen[pc] | (out & ~kill[pc])
            if new != live[pc]:
                live[pc] = new
                changed = True
        if not code.loops:
            break
    return live


def split_points(code: Code, helpers: HelperTable | None = None
                 ) -> list[tuple[int, ...] | None]:
    """For each pc, the live registers whose kinds tell states apart there
    (None: not a join point, a state keeps its predecessor's partition)."""
    n = len(code.insns)
    preds = [0] * n
    for e in code.entries:
        if 0 <= e < n:
            preds[e] += 1  # entered from outside its function
    succ = code.succ
    for pc in code.order:
        for t in succ[pc]:  # a conditional jump to the next pc has one successor
            preds[t] += 1
    if len(code.entries) > 1:
        specs, call = code.specs, _K.CALL_LOCAL
        for pc in code.order:
            spec = specs[pc]
            if spec is not None and spec.kind is call and pc + 1 < n:
                preds[pc + 1] += 1  # the callee's exits meet here
    points: list[tuple[int, ...] | None] = [None] * n
    if max(preds, default=0) < 2:
        return points
    live = live_in(code, helpers)
    regs = _REGS
    for pc in code.order:
        if preds[pc] > 1:
            mask = live[pc]
            got = regs.get(mask)
            if got is None:
                got = regs[mask] = tuple(r for r in range(NREGS) if mask >> r & 1)
            points[pc] = got
    return points


_REGS: dict[int, tuple[int, ...]] = {}  # a mask of registers -> their numbers
