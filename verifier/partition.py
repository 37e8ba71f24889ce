"""A small set of states per (call chain, pc): which one a state joins.

The analysis keeps apart the states that reach a join point with
different kinds in a live register (uninitialised, mixed, scalar, map
handle, or a pointer into a kind of object), as the kernel keeps the
paths apart: a pointer and a scalar in one register are not joined into
something neither path holds.  A state is routed to a partition of its
target node: at a join point by its *signature* (those kinds), elsewhere
to its predecessor's partition.  The first state of a new signature that
an existing partition already subsumes joins that one (the pruning of the
kernel's ``states_equal``); past :data:`MAX_STATES` partitions, new
signatures go to the last one, which becomes their join, so the work per
node stays bounded.  Routes are decided once per signature, so the
analysis's fixpoint does not oscillate between partitions.

:func:`fold` gives the result per (call chain, pc): the union (join) of
the partitions' states, the set itself, the problems found in any of
them, and the states each predecessor sent to a loop head.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from verifier.domains.state import State
from verifier.domains.values import K_PTR

MAX_STATES = 4  # states kept apart per (call chain, pc)

Chain = tuple[int, ...]
Node = tuple[Chain, int, int]  # (call sites, pc, partition)
Key = tuple[Chain, int]  # (call sites, pc)


def signature(state: State, regs: tuple[int, ...]) -> tuple:
    """The kinds of ``regs`` in ``state``'s current frame."""
    vals = state.frames[-1].regs
    out = []
    for r in regs:
        v = vals[r]
        out.append((v.obj.kind, v.obj.ref) if v.kind is K_PTR else v.kind)  # type: ignore[union-attr]
    return tuple(out)


class Router:
    """The partitions of every node, and which one a state goes to."""

    def __init__(self, points: list[tuple[int, ...] | None]) -> None:
        self.points = points
        self.routes: dict[Key, dict[tuple, int]] = {}
        self.count: dict[Key, int] = {}
        self.split = False  # some node has a partition other than 0

    def route(self, chain: Chain, pc: int, part: int, state: State,
              states: dict[Node, State]) -> Node:
        regs = self.points[pc]
        if regs is None:
            return (chain, pc, part)
        key = (chain, pc)
        sig = signature(state, regs)
        table = self.routes.get(key)
        if table is None:
            self.routes[key] = {sig: 0}
            self.count[key] = 1
            return (chain, pc, 0)
        got = table.get(sig)
        if got is not None:
            return (chain, pc, got)
        n = self.count[key]
        for q in range(n):  # subsumed by a state kept already: prune
            old = states.get((chain, pc, q))
            if old is not None and old.join(state) == old:
                table[sig] = q
                return (chain, pc, q)
        self.split = True
        if n < MAX_STATES:
            self.count[key] = n + 1
            table[sig] = n
            return (chain, pc, n)
        table[sig] = MAX_STATES - 1  # over the bound: the join
        return (chain, pc, MAX_STATES - 1)


class Union(Mapping):
    """(call chain, pc) -> the join of the states kept apart there, joined
    on first read (many readers need only the keys)."""

    def __init__(self, sets: dict[Key, list[State]]) -> None:
        self.sets = sets
        self.joined: dict[Key, State] = {}

    def __getitem__(self, key: Key) -> State:
        got = self.joined.get(key)
        if got is None:
            group = self.sets[key]
            got = group[0]
            for st in group[1:]:
                got = got.join(st)
            self.joined[key] = got
        return got

    def __iter__(self) -> Iterator[Key]:
        return iter(self.sets)

    def __len__(self) -> int:
        return len(self.sets)

    def __contains__(self, key: object) -> bool:
        return key in self.sets


def fold(states: dict[Node, State], problems: dict[Node, list],
         contrib: dict[Node, dict[Node, State]], heads: set[int] | dict,
         split: bool = True) -> tuple[
             Union, dict[Key, list[State]], dict[Key, list],
             dict[Key, dict[Key, State]]]:
    """Per (call chain, pc): the union, the set (by partition), the
    problems of every partition, and, at loop ``heads``, each
    predecessor's contribution (joined over the partitions that sent and
    received it).  ``split`` False: every node is partition 0."""
    if not split:  # one state per (call chain, pc): nothing to group or join
        sets = {(c, p): [st] for (c, p, _q), st in states.items()}
        found = {(c, p): ps for (c, p, _q), ps in problems.items()}
        sent = {(c, p): {(sc, sp): st for (sc, sp, _r), st in srcs.items()}
                for (c, p, _q), srcs in contrib.items() if p in heads}
        return Union(sets), sets, found, sent
    parts: dict[Key, list[int]] = {}
    for chain, pc, q in states:
        key = (chain, pc)
        got = parts.get(key)
        if got is None:
            parts[key] = [q]
        else:
            got.append(q)
    sets: dict[Key, list[State]] = {}
    found: dict[Key, list] = {}
    for key, qs in parts.items():
        chain, pc = key
        if len(qs) == 1:
            node = (chain, pc, qs[0])
            sets[key] = [states[node]]
            found[key] = problems.get(node, [])
            continue
        qs.sort()
        sets[key] = [states[(chain, pc, q)] for q in qs]
        found[key] = [p for q in qs for p in problems.get((chain, pc, q), [])]
    sent: dict[Key, dict[Key, State]] = {}
    for key, qs in parts.items():
        if key[1] not in heads:
            continue
        into = sent[key] = {}
        for q in qs:
            for (c, p, _r), st in contrib.get((key[0], key[1], q), {}).items():
                prev = into.get((c, p))
                into[(c, p)] = st if prev is None else prev.join(st)
    return Union(sets), sets, found, sent
