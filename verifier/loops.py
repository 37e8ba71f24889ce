"""Termination: a ranking argument for every loop the analysis can iterate.

After the fixpoint, each loop whose back edge is feasible needs a register
``r`` such that on every path around the loop ``r`` changes by an amount of
fixed sign (``r += 1``, ``r -= 4``, ``r += r3`` with ``r3`` in [1, 8]...)
and no step on the way can wrap around (checked against the invariant the
analysis proved at that instruction, in the unsigned or the signed sense).
Then ``r`` moves strictly monotonically through a finite range, so the loop
ends; the trip count (head visits per entry into the loop) is bounded by
the head's range over the step, and of all ranking registers the one
giving the smallest bound is kept.  Loops are checked per call chain (the
analysis's contexts), so a function called from several sites gets the
bound of each.  The cost is independent of the trip count: one pass over
the loop body per inner-loop iteration, with widening.

A small relational domain tracks, per register, ``r == base_at_head + d``
with ``d`` in an integer interval, and whether every step was wrap-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfvm import isa
from verifier.analysis import Fixpoint
from verifier.cfg import Code, Loop
from verifier.domains.interval import S64_MAX, S64_MIN
from verifier.domains.state import State
from verifier.domains.tnum import M64
from verifier.domains.values import K_SCALAR

INF = float("inf")
Rec = tuple[int, float, float, bool, bool] | None  # (base reg, dlo, dhi, no u-wrap, no s-wrap)
Recs = tuple[Rec, ...]


Chain = tuple[int, ...]


@dataclass
class LoopVerdict:
    head: int
    ok: bool
    reason: str  # rejection reason, or the ranking register ("r1"), or "never iterates"
    trips: int | None = None  # head visits per entry into the loop
    chain: Chain = ()  # call sites of the analysis context
    reg: int | None = None  # the ranking register
    span: tuple[int, int, int] | None = None  # its lowest and highest value at the head, step


def _join(a: Rec, b: Rec) -> Rec:
    if a is None or b is None or a[0] != b[0]:
        return None
    return (a[0], min(a[1], b[1]), max(a[2], b[2]), a[3] and b[3], a[4] and b[4])


def _widen(a: Rec, b: Rec) -> Rec:
    j = _join(a, b)
    if j is None or a is None:
        return j
    return (j[0], a[1] if j[1] >= a[1] else -INF, a[2] if j[2] <= a[2] else INF, j[3], j[4])


def _step(rec: Rec, dlo: int, dhi: int, state: State, reg: int) -> Rec:
    if rec is None:
        return None
    v = state.reg(reg)
    if v.kind is not K_SCALAR or v.num is None:
        return None
    n = v.num
    nu = rec[3] and n.umin + dlo >= 0 and n.umax + dhi <= M64
    ns = rec[4] and n.smin + dlo >= S64_MIN and n.smax + dhi <= S64_MAX
    return (rec[0], rec[1] + dlo, rec[2] + dhi, nu, ns)


def _transfer(code: Code, pc: int, state: State, recs: Recs) -> Recs:
    insn, spec = code.insns[pc], code.specs[pc]
    assert spec is not None
    out = list(recs)
    k = spec.kind
    if k in (isa.Kind.CALL, isa.Kind.CALLX, isa.Kind.CALL_LOCAL):
        for r in range(6):
            out[r] = None
        return tuple(out)
    if k is isa.Kind.ATOMIC:
        if spec.op == "cmpxchg":
            out[0] = None
        elif spec.op.startswith("fetch") or spec.op == "xchg":
            out[insn.src] = None
        return tuple(out)
    if not spec.writes_dst:
        return recs
    d = insn.dst
    if k is isa.Kind.MOV and spec.width == 64 and spec.src_reg:
        out[d] = recs[insn.src]
    elif k is isa.Kind.ALU and spec.width == 64 and spec.op in ("add", "sub"):
        if spec.src_reg:
            src = state.reg(insn.src)
            if src.kind is not K_SCALAR or src.num is None:
                out[d] = None
                return tuple(out)
            lo, hi = src.num.smin, src.num.smax
        else:
            lo = hi = insn.imm
        if spec.op == "sub":
            lo, hi = -hi, -lo
        out[d] = _step(recs[d], lo, hi, state, d)
    else:
        out[d] = None
    return tuple(out)


def _chain_states(res: Fixpoint) -> dict[Chain, dict[int, State]]:
    by_chain: dict[Chain, dict[int, State]] = {}
    for (chain, pc), st in res.states.items():
        by_chain.setdefault(chain, {})[pc] = st
    return by_chain


def _feasible_back(res: Fixpoint, loop: Loop, chain: Chain) -> list[int]:
    contrib = res.contrib.get((chain, loop.head), {})
    return sorted({src[1] for src in contrib if src[0] == chain and src[1] in loop.back})


def check_loop(code: Code, res: Fixpoint, loop: Loop, states: dict[int, State],
               chain: Chain = ()) -> LoopVerdict:
    back = _feasible_back(res, loop, chain)
    if not back:
        return LoopVerdict(loop.head, True, "never iterates", 1, chain)
    ident: Recs = tuple((r, 0, 0, True, True) for r in range(11))
    ins: dict[int, Recs] = {loop.head: ident}
    joins: dict[int, int] = {}
    at_back: Recs | None = None
    todo = [loop.head]
    budget = 64 * len(loop.body) + 64
    while todo and budget:
        budget -= 1
        todo.sort(key=lambda p: code.rank[p])
        pc = todo.pop(0)
        st = states.get(pc)
        if st is None:
            continue
        out = _transfer(code, pc, st, ins[pc])
        for s in code.succ[pc]:
            if s == loop.head:
                if pc in back:
                    at_back = out if at_back is None else tuple(
                        _join(a, b) for a, b in zip(at_back, out, strict=True))
                continue
            if s not in loop.body:
                continue
            old = ins.get(s)
            if old is None:
                new = out
            else:
                j = joins.get(s, 0) + 1
                joins[s] = j
                comb = _widen if j > 2 else _join
                new = tuple(comb(a, b) for a, b in zip(old, out, strict=True))
            if new != old:
                ins[s] = new
                if s not in todo:
                    todo.append(s)
    if at_back is None or todo:
        return LoopVerdict(loop.head, False, _blame(code, loop, None), chain=chain)
    best = _best_ranking(at_back, states[loop.head])
    if best is None:
        return LoopVerdict(loop.head, False, _blame(code, loop, at_back), chain=chain)
    r, lo, hi, step = best
    return LoopVerdict(loop.head, True, f"r{r}", (hi - lo) // abs(step) + 1, chain, r,
                       (lo, hi, step))


def _best_ranking(at_back: Recs, head: State) -> tuple[int, int, int, int] | None:
    """The ranking register with the smallest trip bound: (reg, lo, hi, step),
    ``step`` the smallest move per trip, negative for a count down."""
    best: tuple[int, int, int, int] | None = None
    for r in range(10):
        rec = at_back[r]
        if rec is None or rec[0] != r or not (rec[1] > 0 or rec[2] < 0):
            continue
        if not (rec[3] or rec[4]):
            continue
        v = head.reg(r)
        if v.kind is not K_SCALAR or v.num is None:
            continue
        step = int(rec[1]) if rec[1] > 0 else int(rec[2])
        n = v.num
        lo, hi = (n.umin, n.umax) if rec[3] else (n.smin, n.smax)
        if best is None or (hi - lo) // abs(step) < (best[2] - best[1]) // abs(best[3]):
            best = (r, lo, hi, step)
    return best


def _blame(code: Code, loop: Loop, at_back: Recs | None) -> str:
    """Name the register the loop's exit depends on (or that moves)."""
    for p, _s in loop.exits:
        spec = code.specs[p]
        if spec is not None and spec.kind is isa.Kind.JCOND:
            return f"cannot bound r{code.insns[p].dst}"
    if at_back is not None:
        for r in range(10):
            rec = at_back[r]
            if rec is not None and rec[0] == r and (rec[1] > 0 or rec[2] < 0):
                return f"cannot bound r{r}"
    has_exit = any(code.specs[p] is not None and code.specs[p].kind is isa.Kind.EXIT  # type: ignore
                   for p in loop.body)
    if not loop.exits and not has_exit:
        return "no path leaves the loop"
    return "no register changes by a constant step on every iteration"


def check_loops(code: Code, res: Fixpoint) -> list[LoopVerdict]:
    """A verdict for every loop in every call chain that reaches its head."""
    if not code.loops:
        return []
    out = []
    for chain, states in sorted(_chain_states(res).items()):
        for head, loop in sorted(code.loops.items()):
            if head in states:
                out.append(check_loop(code, res, loop, states, chain))
    return out
