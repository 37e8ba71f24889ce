"""Termination: a ranking argument for every loop the analysis can iterate.

After the fixpoint, each loop whose back edge is feasible needs a *ranking
variable* ``v`` -- a register, or a scalar spilled in a stack slot of the
loop's frame (compilers keep loop counters there) -- such that on every
path around the loop ``v`` changes by an amount of fixed sign (``r += 1``,
``r -= 4``, ``r += r3`` with ``r3`` in [1, 8]...) and no step on the way
wraps around, in one of four *views* of the value: unsigned or signed, of
the 64 bits or of the low 32 (a ``w1 < w2`` exit test on a 64-bit counter
ranks the loop by ``w1``).  Then ``v`` moves strictly monotonically through
a finite range in that view, so the loop ends; the trip count (head visits
per entry into the loop) is bounded by the range over the step, and of all
candidates the one giving the smallest bound is kept.  Two arguments are
tried for each candidate:

* *every visit*: the steps cannot wrap in the invariant the analysis proved
  at each of them, and ``v`` stays in its range at the head;
* *every visit but the first* (the first iteration may start anywhere, as
  when a counter is unknown on entry): the head's value on a later visit is
  the value on a back edge, where the exit test refined it -- directly, or
  through a variable ``x`` that differs from it by a known amount
  (``r3 = r1; r1 += 1; if r3 < r2 goto loop``: there ``r1 == r3 + 1``).
  Assuming the head in these ranges, the walk around the loop is checked
  again for wrap-around, and the bound counts one more visit.

Loops are checked per call chain (the analysis's contexts), so a function
called from several sites gets the bound of each.  The cost is independent
of the trip count: two passes over the loop body per inner-loop iteration,
with widening.

A small relational domain tracks, per variable, ``v == base_at_head + d``
with ``d`` in an integer interval: whether that holds modulo 2**64 and
modulo 2**32 (in the low 32 bits), and in which views it holds exactly
(every step wrap-free).  A stack slot is a variable while only 4- or 8-byte
stores of a register at a constant offset touch it; any other write that
may reach it (a store through a pointer of unknown offset, an atomic, a
call given a pointer into the frame) forgets it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from bpfvm import isa
from verifier.analysis import Fixpoint
from verifier.cfg import Code, Loop
from verifier.domains.interval import S32_MAX, S32_MIN, S64_MAX, S64_MIN, Scalar
from verifier.domains.state import State
from verifier.domains.tnum import M32, M64
from verifier.domains.values import K_PTR, K_SCALAR, K_TOP, Val

INF = float("inf")
# A variable: a register (0..10) or a stack slot of the loop's frame, (offset, size).
Var = int | tuple[int, int]
# (base variable, dlo, dhi, holds mod 2**64, holds mod 2**32, then exact in each view)
Rec = tuple[Var, float, float, bool, bool, bool, bool, bool, bool]
Recs = dict[Var, Rec]  # a variable not in it: no relation known
Ranges = dict[tuple[Var, int], tuple[int, int] | None]  # (variable, view) -> range

Chain = tuple[int, ...]
U64, S64, U32, S32 = range(4)  # the views
VIEW_LO = (0, S64_MIN, 0, S32_MIN)
VIEW_HI = (M64, S64_MAX, M32, S32_MAX)
MOD = (3, 3, 4, 4)  # the rec field telling whether a view's relation holds modularly
EXACT = 5  # rec[EXACT + view]: the relation holds exactly in ``view``
_K_CALLS = (isa.Kind.CALL, isa.Kind.CALLX, isa.Kind.CALL_LOCAL)


@dataclass
class LoopVerdict:
    head: int
    ok: bool
    reason: str  # rejection reason, the ranking variable ("r1", "w1", "fp-8"), or
    # "never iterates"
    trips: int | None = None  # head visits per entry into the loop
    chain: Chain = ()  # call sites of the analysis context
    reg: int | None = None  # the ranking register (None for a stack slot)
    span: tuple[int, int, int] | None = None  # its lowest and highest value, step
    name: str = ""  # the ranking variable as the reason names it


def _join(a: Rec | None, b: Rec | None) -> Rec | None:
    if a is None or b is None or a[0] != b[0]:
        return None
    if a == b:
        return a
    return (a[0], min(a[1], b[1]), max(a[2], b[2]), a[3] and b[3], a[4] and b[4],
            a[5] and b[5], a[6] and b[6], a[7] and b[7], a[8] and b[8])


def _widen(a: Rec | None, b: Rec | None) -> Rec | None:
    j = _join(a, b)
    if j is None or a is None or j is a:
        return j
    return (j[0], a[1] if j[1] >= a[1] else -INF, a[2] if j[2] <= a[2] else INF,
            *j[3:])  # type: ignore[return-value]


def _combine(a: Recs, b: Recs, comb) -> Recs:  # type: ignore[no-untyped-def]
    out: Recs = {}
    for k, ra in a.items():
        rb = b.get(k)
        if rb is not None:
            j = comb(ra, rb)
            if j is not None:
                out[k] = j
    return out


def _scalar(v: Val | None) -> Scalar | None:
    if v is None or v.kind is not K_SCALAR:
        return None
    return v.num


def _view(n: Scalar, view: int) -> tuple[int, int]:
    if view == U64:
        return n.umin, n.umax
    if view == S64:
        return n.smin, n.smax
    if view == U32:
        return n.u32min, n.u32max
    return n.s32min, n.s32max


def _low32(rec: Rec | None, n: Scalar | None) -> Rec | None:
    """``rec`` of the zero-extended low 32 bits of a variable whose value is ``n``."""
    if rec is None or n is None:
        return None
    if n.umax <= M32:  # the same value
        return rec
    return (rec[0], rec[1], rec[2], False, rec[4], False, False, rec[7], rec[8])


def _slot_range(v: Val, depth: int) -> tuple[int, int] | None | bool:
    """The fp-relative offsets [lo, hi] a stack pointer into frame ``depth``
    may hold; None when ``v`` cannot point there; True when it may, anywhere."""
    if v.kind is K_TOP:
        return True
    if v.kind is not K_PTR or v.obj is None or v.obj.kind != "stack" \
            or int(v.obj.ref) != depth:
        return None
    assert v.num is not None
    return v.num.smin, v.num.smax


def _kill(recs: Recs, lo: float, hi: float) -> None:
    """Forget the slots overlapping bytes [lo, hi) (relations to a slot's
    value at the head stay true)."""
    for k in [k for k in recs if isinstance(k, tuple) and k[0] < hi and lo < k[0] + k[1]]:
        del recs[k]


class _Walk:
    """One pass of the relational analysis around a loop.  ``later`` (the
    ranges of the variables at the head on every visit but the first) given,
    the exact-view flags hold for the iterations that start on such a visit."""

    def __init__(self, code: Code, states: Mapping[int, State], depth: int,
                 later: Ranges | None) -> None:
        self.code, self.states, self.depth, self.later = code, states, depth, later

    def step(self, rec: Rec | None, dlo: int, dhi: int, n: Scalar | None, wide: bool) -> Rec | None:
        """``rec`` after adding a value in [dlo, dhi] to a variable whose value
        before is ``n``: by a 64-bit add (``wide``) or a 32-bit one."""
        if rec is None or n is None:
            return None
        ok = [rec[EXACT + v] and self._no_wrap(rec, v, n, dlo, dhi) for v in range(4)]
        m64 = rec[3]
        if not wide:  # the result is zero-extended: the same sum when it was below 2**32
            exact = n.umax <= M32 and n.u32min + dlo >= 0 and n.u32max + dhi <= M32
            m64 = m64 and exact
            ok[U64] = ok[U64] and exact
            ok[S64] = ok[S64] and exact
        return (rec[0], rec[1] + dlo, rec[2] + dhi, m64, rec[4], *ok)  # type: ignore[return-value]

    def _no_wrap(self, rec: Rec, view: int, n: Scalar, dlo: int, dhi: int) -> bool:
        lo, hi = _view(n, view)
        if lo + dlo >= VIEW_LO[view] and hi + dhi <= VIEW_HI[view]:
            return True
        if self.later is None or rec[1] == -INF or rec[2] == INF:
            return False
        base = self.later.get((rec[0], view))
        if base is None:
            return False
        return (base[0] + int(rec[1]) + dlo >= VIEW_LO[view]
                and base[1] + int(rec[2]) + dhi <= VIEW_HI[view])

    def transfer(self, pc: int, recs: Recs) -> Recs:
        code, state, depth = self.code, self.states[pc], self.depth
        insn, spec = code.insns[pc], code.specs[pc]
        assert spec is not None
        k = spec.kind
        out = dict(recs)
        if k in _K_CALLS:
            for r in range(6):
                out.pop(r, None)
            for r in range(1, 6):  # the callee may write through a pointer into this frame
                v = state.reg(r)
                if k is not isa.Kind.CALL and (v.kind is K_TOP or v.kind is K_PTR):
                    _kill(out, -INF, INF)  # a function may follow pointers found in memory
                    continue
                rng = _slot_range(v, depth)
                # a helper writes at most up to the frame's top, through an argument
                # that is a pointer (one of different types on different paths is
                # rejected where the helper takes it, and ignored where it does not)
                if isinstance(rng, tuple):
                    _kill(out, rng[0], INF)
            return out
        if k in (isa.Kind.ST, isa.Kind.STX, isa.Kind.ATOMIC):
            rng = _slot_range(state.reg(insn.dst), depth)
            if rng is True:
                _kill(out, -INF, INF)
            elif rng is not None:
                lo, hi = rng[0] + insn.off, rng[1] + insn.off + spec.width  # type: ignore[index]
                _kill(out, lo, hi)
                if k is isa.Kind.STX and lo + spec.width == hi and spec.width in (4, 8):
                    n = _scalar(state.reg(insn.src))
                    src = recs.get(insn.src) if n is not None else None
                    new = src if spec.width == 8 else _low32(src, n)
                    if new is not None:
                        out[(lo, spec.width)] = new
            if k is isa.Kind.ATOMIC:
                if spec.op == "cmpxchg":
                    out.pop(0, None)
                elif spec.op.startswith("fetch") or spec.op == "xchg":
                    out.pop(insn.src, None)
            return out
        if not spec.writes_dst:
            return out
        d = insn.dst
        new: Rec | None = None
        if k is isa.Kind.MOV and spec.src_reg:
            src = recs.get(insn.src)
            new = src if spec.width == 64 else _low32(src, _scalar(state.reg(insn.src)))
        elif k is isa.Kind.ALU and spec.op in ("add", "sub"):
            wide = spec.width == 64
            if spec.src_reg:
                n = _scalar(state.reg(insn.src))
                if n is not None:
                    lo, hi = (n.smin, n.smax) if wide else (n.s32min, n.s32max)
                    if spec.op == "sub":
                        lo, hi = -hi, -lo
                    new = self.step(recs.get(d), lo, hi, _scalar(state.reg(d)), wide)
            else:
                c = -insn.imm if spec.op == "sub" else insn.imm
                new = self.step(recs.get(d), c, c, _scalar(state.reg(d)), wide)
        elif k is isa.Kind.LDX and spec.op == "ldx" and spec.width in (4, 8):
            rng = _slot_range(state.reg(insn.src), depth)
            if isinstance(rng, tuple) and rng[0] == rng[1]:
                off = rng[0] + insn.off
                if spec.width == 8:
                    new = recs.get((off, 8))
                elif (off, 8) in recs:  # the low half of an 8-byte slot
                    new = _low32(recs[(off, 8)], _value(state, depth, (off, 8)))
                else:
                    new = recs.get((off, 4))
        if new is None:  # relations to d's value at the head stay true
            out.pop(d, None)
        else:
            out[d] = new
        return out

    def run(self, loop: Loop, back: list[int], ident: Recs) -> dict[int, Recs] | None:
        """The relations on each feasible back edge (None: no fixpoint in budget)."""
        code, states = self.code, self.states
        ins: dict[int, Recs] = {loop.head: ident}
        joins: dict[int, int] = {}
        at_back: dict[int, Recs] = {}
        todo = [loop.head]
        budget = 64 * len(loop.body) + 64
        while todo and budget:
            budget -= 1
            todo.sort(key=lambda p: code.rank[p])
            pc = todo.pop(0)
            if pc not in states:
                continue
            out = self.transfer(pc, ins[pc])
            for s in code.succ[pc]:
                if s == loop.head:
                    if pc in back:
                        old_b = at_back.get(pc)
                        at_back[pc] = out if old_b is None else _combine(old_b, out, _join)
                    continue
                if s not in loop.body:
                    continue
                old = ins.get(s)
                if old is None:
                    new = out
                else:
                    j = joins.get(s, 0) + 1
                    joins[s] = j
                    new = _combine(old, out, _widen if j > 2 else _join)
                if new != old:
                    ins[s] = new
                    if s not in todo:
                        todo.append(s)
        return None if todo else at_back


def _value(state: State, depth: int, var: Var) -> Scalar | None:
    if isinstance(var, int):
        return _scalar(state.reg(var))
    got = state.stack(depth).spills.get(var[0])
    if got is None or got[0] != var[1]:
        return None
    return _scalar(got[1])


def _name(var: Var, view: int) -> str:
    if isinstance(var, int):
        return f"w{var}" if view >= U32 else f"r{var}"
    return f"fp{var[0]}"


class _InChain(Mapping):
    """pc -> the analysis's state at (``chain``, pc), read (and, where
    several states were kept apart, joined) only for the pcs asked for."""

    def __init__(self, states: Mapping[tuple[Chain, int], State], chain: Chain) -> None:
        self.states, self.chain, self.pcs = states, chain, set()

    def __getitem__(self, pc: int) -> State:
        if pc not in self.pcs:
            raise KeyError(pc)
        return self.states[(self.chain, pc)]

    def __contains__(self, pc: object) -> bool:
        return pc in self.pcs

    def __iter__(self) -> Iterator[int]:
        return iter(self.pcs)

    def __len__(self) -> int:
        return len(self.pcs)


def _chain_states(res: Fixpoint) -> dict[Chain, _InChain]:
    by_chain: dict[Chain, _InChain] = {}
    for chain, pc in res.states:
        got = by_chain.get(chain)
        if got is None:
            got = by_chain[chain] = _InChain(res.states, chain)
        got.pcs.add(pc)
    return by_chain


def _feasible_back(res: Fixpoint, loop: Loop, chain: Chain) -> list[int]:
    contrib = res.contrib.get((chain, loop.head), {})
    return sorted({src[1] for src in contrib if src[0] == chain and src[1] in loop.back})


def _joined(at_back: dict[int, Recs]) -> Recs:
    joined: Recs | None = None
    for recs in at_back.values():
        joined = recs if joined is None else _combine(joined, recs, _join)
    return joined or {}


def check_loop(code: Code, res: Fixpoint, loop: Loop, states: Mapping[int, State],
               chain: Chain = ()) -> LoopVerdict:
    back = _feasible_back(res, loop, chain)
    if not back:
        return LoopVerdict(loop.head, True, "never iterates", 1, chain)
    head = states[loop.head]
    depth = head.depth
    ident: Recs = {r: (r, 0, 0, True, True, True, True, True, True) for r in range(11)}
    for off, (size, v) in head.stack(depth).spills.items():
        if size in (4, 8) and v.kind is K_SCALAR:
            ident[(off, size)] = ((off, size), 0, 0, True, True, True, True, True, True)
    first = _Walk(code, states, depth, None).run(loop, back, ident)
    if not first:
        return LoopVerdict(loop.head, False, _blame(code, loop, None), chain=chain)
    edges = {b: res.contrib[(chain, loop.head)][(chain, b)] for b in first}
    later = _later(first, edges, depth, ident)
    again = _Walk(code, states, depth, later).run(loop, back, ident)
    best = _best_ranking(_joined(first), _joined(again or {}), later, head, depth)
    if best is None:
        return LoopVerdict(loop.head, False, _blame(code, loop, _joined(first)), chain=chain)
    trips, var, view, lo, hi, step = best
    name = _name(var, view)
    return LoopVerdict(loop.head, True, name, trips, chain,
                       var if isinstance(var, int) else None, (lo, hi, step), name)


def _later(at_back: dict[int, Recs], edges: dict[int, State], depth: int,
           ident: Recs) -> Ranges:
    """The range of each variable of ``ident`` in each view at the head on
    every visit but the first (None: there is no such visit).  On each back
    edge it is the value there, bounded through every variable related to
    the same head value: ``v == x + (d_v - d_x)`` modulo the view's width,
    exactly when that sum cannot leave the view's range."""
    out: Ranges = {}
    full = tuple(zip(VIEW_LO, VIEW_HI, strict=True))
    for b, recs in at_back.items():
        st = edges[b]
        ranges = {}  # variable -> its range in each view at the back edge
        for var in ident.keys() | recs.keys():
            n = _value(st, depth, var)
            ranges[var] = full if n is None else (
                (n.umin, n.umax), (n.smin, n.smax), (n.u32min, n.u32max), (n.s32min, n.s32max))
        related: dict[Var, list[tuple[Var, Rec]]] = {}  # head value -> finite relations
        for x, rec in recs.items():
            if rec[1] != -INF and rec[2] != INF:
                related.setdefault(rec[0], []).append((x, rec))
        for var in ident:
            mine = recs.get(var)
            group = related.get(mine[0], ()) if mine is not None else ()
            for view in range(4):
                lo, hi = ranges[var][view]
                if len(group) > 1 and mine[MOD[view]] and mine[1] != -INF and mine[2] != INF:
                    vlo, vhi = VIEW_LO[view], VIEW_HI[view]
                    for x, rec in group:
                        if x == var or not rec[MOD[view]] or ranges[x] is full:
                            continue
                        xlo, xhi = ranges[x][view]
                        elo, ehi = xlo + int(mine[1] - rec[2]), xhi + int(mine[2] - rec[1])
                        if elo >= vlo and ehi <= vhi:
                            if elo > lo:
                                lo = elo
                            if ehi < hi:
                                hi = ehi
                key = (var, view)
                if lo > hi:
                    out.setdefault(key, None)
                    continue
                old = out.get(key)
                out[key] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return out


def _best_ranking(first: Recs, again: Recs, later: Ranges, head: State,
                  depth: int) -> tuple[int, Var, int, int, int, int] | None:
    """The ranking variable and view with the smallest trip bound:
    (trips, variable, view, lo, hi, step), ``step`` the smallest move per
    trip, negative for a count down."""
    best: tuple[int, Var, int, int, int, int] | None = None
    for var, rec in first.items():
        if rec[0] != var or not (rec[1] > 0 or rec[2] < 0):
            continue
        n = _value(head, depth, var)
        if n is None:
            continue
        step = int(rec[1]) if rec[1] > 0 else int(rec[2])
        rec2 = again.get(var)
        for view in range(4):
            lo, hi = _view(n, view)
            found: tuple[int, int, int] | None = None
            if rec[EXACT + view]:  # every visit: the head's range
                found = ((hi - lo) // abs(step) + 1, lo, hi)
            if rec2 is not None and rec2[EXACT + view] and (var, view) in later:
                rng = later[(var, view)]
                if rng is None:  # never back at the head
                    found = (1, lo, hi)
                else:  # every visit but the first: the back edges' range
                    llo, lhi = max(lo, rng[0]), min(hi, rng[1])
                    trips = (lhi - llo) // abs(step) + 2 if llo <= lhi else 1
                    if found is None or trips < found[0]:
                        found = (trips, llo, lhi)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], var, view, found[1], found[2], step)
    return best


def _blame(code: Code, loop: Loop, at_back: Recs | None) -> str:
    """Name the register the loop's exit depends on (or that moves)."""
    for p, _s in loop.exits:
        spec = code.specs[p]
        if spec is not None and spec.kind is isa.Kind.JCOND:
            return f"cannot bound r{code.insns[p].dst}"
    if at_back is not None:
        for r in range(10):
            rec = at_back.get(r)
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
