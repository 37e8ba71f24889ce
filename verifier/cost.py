"""The instruction bound: at most how many instructions one run executes.

Once every loop has a trip bound (head visits per entry into the loop, from
:mod:`verifier.loops`), the bound of a run is a sum over the analysis's
nodes (call chain, pc): each reachable instruction counts once per entry
into its function's context, times the trip bounds of the loops that
contain it.  This is sound for reducible graphs: between two executions of
an instruction its innermost enclosing loop's head is visited, and between
two entries into a loop its parent's head is.  A local call's context is
entered as many times as its call instruction runs, so nested calls and
loops multiply.  Arithmetic is exact (Python integers), so a bound of
2**64 stays what it is.  The bound depends on the number of nodes, never
on the trip counts.  This module does not decide; :mod:`verifier.api`
compares the bound with its limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bpfvm import isa
from verifier.cfg import Code
from verifier.loops import Chain, LoopVerdict

_CALL_LOCAL = isa.Kind.CALL_LOCAL  # read once: a member lookup on an Enum class is slow
# The engines' default instruction budget (bpfvm.engine.INSN_BUDGET, a test keeps the two
# equal): an accepted program finishes within what an engine runs by default.
INSN_LIMIT = 10_000_000


@dataclass
class Bound:
    total: int  # instructions one run may execute
    visits: dict[tuple[Chain, int], int] = field(default_factory=dict)  # loop head visits


def instruction_bound(code: Code, nodes: list[tuple[Chain, int]],
                      loops: list[LoopVerdict]) -> Bound:
    """The bound over the reachable ``nodes``; every verdict in ``loops``
    must be ok (a loop without a verdict is unreachable in that chain)."""
    if not code.loops and len(code.entries) == 1:  # every node runs at most once
        return Bound(len(nodes))
    trips = {(lv.chain, lv.head): lv.trips or 1 for lv in loops}
    inside: dict[int, list[int]] = {}  # pc -> heads of the loops containing it
    for head, loop in code.loops.items():
        for p in loop.body:
            inside.setdefault(p, []).append(head)
    by_chain: dict[Chain, list[int]] = {}
    for chain, pc in nodes:
        by_chain.setdefault(chain, []).append(pc)
    entries: dict[Chain, int] = {(): 1}
    bound = Bound(0)
    for chain in sorted(by_chain, key=len):  # a caller's context before its callees'
        times = entries.get(chain, 0)
        for pc in by_chain[chain]:
            n = times
            for head in inside.get(pc, ()):
                n *= trips.get((chain, head), 1)
            bound.total += n
            if pc in code.loops:
                bound.visits[(chain, pc)] = n
            spec = code.specs[pc]
            if spec is not None and spec.kind is _CALL_LOCAL:
                entries[chain + (pc,)] = n
    return bound


def heaviest_loop(loops: list[LoopVerdict], bound: Bound) -> LoopVerdict | None:
    """The loop whose head is visited most often in one run (None without loops)."""
    best: LoopVerdict | None = None
    most = -1
    for lv in loops:
        n = bound.visits.get((lv.chain, lv.head), 0)
        if n > most or (n == most and best is not None and (lv.trips or 0) > (best.trips or 0)):
            best, most = lv, n
    return best
