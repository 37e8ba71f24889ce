"""The fixpoint engine: abstract interpretation over (call chain, pc) nodes.

Local calls are analysed per call site: a node is a pc plus the chain of
call sites that led to it, so each call gets its own frame and precise
arguments.  Each (call chain, pc) holds a small set of states: a node of
the worklist is one partition of it (:mod:`verifier.partition` routes
every state sent to one).  A worklist ordered by (chain,
reverse-postorder rank, partition) visits nodes; each node's entry state
is the join of what its predecessors sent to it (widened, after a short
delay, at loop heads); the edges of one visit that reach the same node
(both outcomes of a jump to the next pc) are joined before they are
sent.  A loop head's widening delay starts over when the loop is entered
with a new state, and (a bounded number of times) when an iteration that
began in another of the head's states arrives: for this state it is an
entry too.  After the ascending phase, a bounded descending phase (narrowing)
recomputes loop heads without widening.  The last visit of every node
uses its final entry state, so the problems found then are the verdict.
Work is bounded by ``budget`` node visits: past it the analysis stops
with a "too complex" problem.  The result (:class:`Fixpoint`) is given
per (call chain, pc): the union of its states, the set, and the problems
of every partition.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from verifier.checks import Problem
from verifier.domains.state import State
from verifier.env import Env
from verifier.liveness import split_points
from verifier.partition import MAX_STATES, Router, fold
from verifier.transfer import TRANSFER

WIDEN_DELAY = 2  # joins at a loop head before widening starts
NARROW_PASSES = 2  # descending updates allowed per loop head
CROSS_RESTARTS = 8  # widening delays restarted by another state's iteration, per node
PROGRESS_VISITS = 8192  # instruction visits between two calls of a progress callback

Key = tuple[tuple[int, ...], int]  # (call sites, pc)
Node = tuple[tuple[int, ...], int, int]  # (call sites, pc, partition)
ENTRY: Node = ((), -1, 0)  # the pseudo-predecessor of pc 0


@dataclass
class Fixpoint:
    """The analysis's result per (call chain, pc): ``states`` the union of
    the states kept apart there, ``sets`` those states (by partition),
    ``problems`` what any of them violates, ``contrib`` (at loop heads)
    what each predecessor sent."""

    states: Mapping[Key, State] = field(default_factory=dict)
    problems: dict[Key, list[Problem]] = field(default_factory=dict)
    contrib: dict[Key, dict[Key, State]] = field(default_factory=dict)
    sets: dict[Key, list[State]] = field(default_factory=dict)
    visits: int = 0
    exhausted: Problem | None = None


@dataclass
class _Nodes:
    """The worklist's own records, per partition node."""

    states: dict[Node, State] = field(default_factory=dict)
    problems: dict[Node, list[Problem]] = field(default_factory=dict)
    contrib: dict[Node, dict[Node, State]] = field(default_factory=dict)


class Analyzer:
    def __init__(self, env: Env, entry: State, budget: int,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.env = env
        self.budget = budget
        self.progress = progress  # (visits, of at most), every PROGRESS_VISITS visits
        self.res = Fixpoint()
        self.nodes = _Nodes()
        self.router = Router(split_points(env.code, env.helpers))
        self.heads = set(env.code.loops)
        self.joins: dict[Node, int] = {}
        self.narrowed: dict[Node, int] = {}
        self.restarts: dict[Node, int] = {}
        self.queue: list[tuple[tuple, Node]] = []
        self.queued: set[Node] = set()
        self.narrowing = False
        self.sent: dict[Node, set[Node]] = {}
        self.nodes.contrib[((), 0, 0)] = {ENTRY: entry}
        self._recompute(((), 0, 0))

    def _push(self, node: Node) -> None:
        if node not in self.queued:
            self.queued.add(node)
            chain, pc, part = node
            heapq.heappush(self.queue, ((chain, self.env.code.rank[pc], part), node))

    def run(self) -> Fixpoint:
        code = self.env.code
        if len(code.entries) == 1 and not code.loops:
            self._acyclic()
            return self._result()
        return self.worklist()

    def worklist(self) -> Fixpoint:
        """The general fixpoint (any program): ascending, then narrowing."""
        self._loop()
        self.narrowing = True
        for node in list(self.nodes.states):
            if node[1] in self.heads:
                self._recompute(node)
        self._loop()
        return self._result()

    def _result(self) -> Fixpoint:
        res, nodes = self.res, self.nodes
        res.states, res.sets, res.problems, res.contrib = fold(
            nodes.states, nodes.problems, nodes.contrib, self.heads, self.router.split)
        return res

    def _loop(self) -> None:
        res, env = self.res, self.env
        code = env.code
        checker = env.checker
        insns, specs = code.insns, code.specs
        nodes = self.nodes
        queue, queued, states, problems = self.queue, self.queued, nodes.states, nodes.problems
        contrib_of, sent_by, rank = nodes.contrib, self.sent, code.rank
        pop, push, send, recompute = heapq.heappop, heapq.heappush, self._send, self._recompute
        points, route = self.router.points, self.router.route
        transfer, budget, progress = TRANSFER, self.budget, self.progress
        visits = res.visits
        while queue:
            node = pop(queue)[1]
            queued.discard(node)
            state = states.get(node)
            if state is None:  # became unreachable: withdraw what it sent
                for succ in sent_by.pop(node, ()):
                    if node in contrib_of.get(succ, {}):
                        del contrib_of[succ][node]
                        recompute(succ)
                continue
            if visits >= budget:
                res.visits = visits
                checker.pc = node[1]
                checker.problems = []
                checker.reject(f"too complex: analysis budget of {budget} "
                               "instruction visits exhausted", None)
                res.exhausted = checker.problems[0]
                queue.clear()
                return
            visits += 1
            if progress is not None and not visits % PROGRESS_VISITS:
                progress(visits, budget)
            chain, pc, part = node
            spec = specs[pc]
            assert spec is not None
            checker.pc = pc
            checker.problems = []
            env.chain = chain
            env.part = part
            edges = transfer[spec.kind](env, pc, insns[pc], spec, state)
            problems[node] = checker.problems
            before = sent_by.get(node)
            if len(edges) == 1 and edges[0][0] == "next":  # the common case
                _, target, out = edges[0]
                succ: Node = ((chain, target, part) if points[target] is None
                              else route(chain, target, part, out, states))
                if succ in contrib_of:
                    send(node, succ, out)
                elif succ not in states:  # first arrival at a new node (_send, inline)
                    contrib_of[succ] = {node: out}
                    states[succ] = out
                    if succ not in queued:
                        queued.add(succ)
                        push(queue, ((chain, rank[target], succ[2]), succ))
                else:
                    contrib_of[succ] = {node: out}
                    recompute(succ)
                if before is None or len(before) != 1 or succ not in before:
                    sent_by[node] = {succ}
                    if before:
                        self._withdraw(node, before - {succ})
                continue
            outs: dict[Node, State] = {}
            for kind, target, out in edges:
                if kind == "next":
                    succ = route(chain, target, part, out, states)
                elif kind == "call":
                    succ = route(chain + (pc,), target, part, out, states)
                else:
                    succ = route(chain[:-1], chain[-1] + 1, part, out, states)
                # both edges of a jump to the next pc reach the same node: join them
                prev = outs.get(succ)
                outs[succ] = out if prev is None else prev.join(out)
            sent = set(outs)
            for succ, out in outs.items():
                send(node, succ, out)
            sent_by[node] = sent
            if before:
                self._withdraw(node, before - sent)
        res.visits = visits

    def _acyclic(self) -> None:
        """The worklist's run on one function without loops, written as a
        pass in rank order.  The ranks are a topological order, so the heap
        would pop every reached node once, after all its predecessors (the
        partitions of one pc in their order), and never revisit one
        (nothing is withdrawn, nothing widened): each node is visited with
        the join of what its predecessors sent, in the order they sent it,
        exactly as :meth:`_loop` and :meth:`_send` would."""
        res, env, nodes = self.res, self.env, self.nodes
        code = env.code
        checker = env.checker
        insns, specs = code.insns, code.specs
        states, problems, contrib_of = nodes.states, nodes.problems, nodes.contrib
        self.queue.clear()
        self.queued.clear()
        transfer, budget, progress = TRANSFER, self.budget, self.progress
        points, route = self.router.points, self.router.route
        env.chain = ()
        visits = res.visits
        # at most one visit per instruction, or per state kept apart where there are join points
        most = len(code.order) * (MAX_STATES if any(p is not None for p in points) else 1)
        reached: dict[int, list[int]] = {0: [0]}  # pc -> its partitions reached so far
        for pc in code.order:  # every instruction (a program with an unreachable one is
            # rejected before the analysis)
            parts = reached.get(pc)
            if parts is None:  # no feasible edge reaches it
                continue
            if len(parts) > 1:
                parts.sort()  # the heap's order
            spec = specs[pc]
            assert spec is not None
            for part in parts:
                node: Node = ((), pc, part)
                state = states[node]
                if visits >= budget:
                    res.visits = visits
                    checker.pc = pc
                    checker.problems = []
                    checker.reject(f"too complex: analysis budget of {budget} "
                                   "instruction visits exhausted", None)
                    res.exhausted = checker.problems[0]
                    return
                visits += 1
                if progress is not None and not visits % PROGRESS_VISITS:
                    progress(visits, most)
                checker.pc = pc
                checker.problems = []
                env.part = part
                edges = transfer[spec.kind](env, pc, insns[pc], spec, state)
                problems[node] = checker.problems
                if len(edges) == 1:  # only "next" edges here: no call, no frame
                    target, out = edges[0][1], edges[0][2]
                    succ: Node = ((), target, part) if points[target] is None else \
                        route((), target, part, out, states)
                    outs: tuple = ((succ, out),)
                else:
                    joined: dict[Node, State] = {}
                    for _kind, target, out in edges:
                        succ = ((), target, part) if points[target] is None else \
                            route((), target, part, out, states)
                        prev = joined.get(succ)
                        joined[succ] = out if prev is None else prev.join(out)
                    outs = tuple(joined.items())
                for succ, out in outs:
                    contrib = contrib_of.get(succ)
                    if contrib is None:
                        contrib_of[succ] = {node: out}
                        states[succ] = out
                        at = reached.get(succ[1])
                        if at is None:
                            reached[succ[1]] = [succ[2]]
                        else:
                            at.append(succ[2])
                        continue
                    contrib[node] = out
                    new: State | None = None
                    for s in contrib.values():
                        new = s if new is None else new.join(s)
                    if new != states[succ]:
                        states[succ] = new  # type: ignore[assignment]
        res.visits = visits

    def _withdraw(self, node: Node, gone: set[Node]) -> None:
        """``node`` no longer reaches ``gone``: drop what it sent there."""
        contrib_of = self.nodes.contrib
        for succ in gone:
            if node in contrib_of.get(succ, {}):
                del contrib_of[succ][node]
                self._recompute(succ)

    def _send(self, src: Node, dst: Node, state: State) -> None:
        res = self.nodes
        contrib = res.contrib.get(dst)
        if contrib is None:  # first arrival: the node's state is this one
            res.contrib[dst] = {src: state}
            if dst not in res.states:
                res.states[dst] = state
                self._push(dst)
                return
            self._recompute(dst)
            return
        prev = contrib.get(src)
        if prev is not None and prev == state:
            return
        contrib[src] = state
        if dst in self.joins:
            if not (src[0] == dst[0] and src[1] in self.env.code.loops[dst[1]].back):
                # the loop is entered with a new state: its widening delay starts
                # over, so that what only the entry changed is joined, not widened
                self.joins[dst] = 0
            elif src[2] != dst[2]:
                # an iteration that began in another of the head's states: for this
                # one it is an entry too (a bounded number of times, so that states
                # feeding each other still reach their widening)
                n = self.restarts.get(dst, 0)
                if n < CROSS_RESTARTS:
                    self.restarts[dst] = n + 1
                    self.joins[dst] = 0
        self._recompute(dst)

    def _recompute(self, node: Node) -> None:
        res = self.nodes
        contrib = res.contrib.get(node, {})
        new: State | None = None
        for s in contrib.values():
            new = s if new is None else new.join(s)
        old = res.states.get(node)
        if new is None:
            if old is not None:
                del res.states[node]
                res.problems.pop(node, None)
                self.env.branches.pop(node, None)  # keyed alike: (chain, pc, partition)
                self._push(node)
            return
        if old is not None and node[1] in self.heads:
            if self.narrowing:
                n = self.narrowed.get(node, 0)
                if n >= NARROW_PASSES:
                    return
                self.narrowed[node] = n + 1
            else:
                j = self.joins.get(node, 0) + 1
                self.joins[node] = j
                new = old.join(new, self.env.loop_th.get(node[1], self.env.th)
                               if j > WIDEN_DELAY else None)
        if old is not None and new == old:
            return
        res.states[node] = new
        self._push(node)
