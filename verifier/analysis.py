"""The fixpoint engine: abstract interpretation over (call chain, pc) nodes.

Local calls are analysed per call site: a node is a pc plus the chain of
call sites that led to it, so each call gets its own frame and precise
arguments.  A worklist ordered by (chain, reverse-postorder rank) visits
nodes; each node's entry state is the join of what its predecessors sent
(widened, after a short delay, at loop heads); the edges of one visit that
reach the same node (both outcomes of a jump to the next pc) are joined
before they are sent.  After the ascending phase,
a bounded descending phase (narrowing) recomputes loop heads without
widening.  The last visit of every node uses its final entry state, so the
problems found then are the verdict.  Work is bounded by ``budget`` node
visits: past it the analysis stops with a "too complex" problem.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from verifier.checks import Problem
from verifier.domains.state import State
from verifier.env import Env
from verifier.transfer import TRANSFER

WIDEN_DELAY = 2  # joins at a loop head before widening starts
NARROW_PASSES = 2  # descending updates allowed per loop head
PROGRESS_VISITS = 8192  # instruction visits between two calls of a progress callback

Node = tuple[tuple[int, ...], int]  # (call sites, pc)
ENTRY: Node = ((), -1)  # the pseudo-predecessor of pc 0


@dataclass
class Fixpoint:
    states: dict[Node, State] = field(default_factory=dict)
    problems: dict[Node, list[Problem]] = field(default_factory=dict)
    contrib: dict[Node, dict[Node, State]] = field(default_factory=dict)
    visits: int = 0
    exhausted: Problem | None = None


class Analyzer:
    def __init__(self, env: Env, entry: State, budget: int,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.env = env
        self.budget = budget
        self.progress = progress  # (visits, of at most), every PROGRESS_VISITS visits
        self.res = Fixpoint()
        self.heads = set(env.code.loops)
        self.joins: dict[Node, int] = {}
        self.narrowed: dict[Node, int] = {}
        self.queue: list[tuple[tuple, Node]] = []
        self.queued: set[Node] = set()
        self.narrowing = False
        self.sent: dict[Node, set[Node]] = {}
        self.res.contrib[((), 0)] = {ENTRY: entry}
        self._recompute(((), 0))

    def _push(self, node: Node) -> None:
        if node not in self.queued:
            self.queued.add(node)
            chain, pc = node
            heapq.heappush(self.queue, ((chain, self.env.code.rank[pc]), node))

    def run(self) -> Fixpoint:
        code = self.env.code
        if len(code.entries) == 1 and not code.loops:
            self._acyclic()
            return self.res
        return self.worklist()

    def worklist(self) -> Fixpoint:
        """The general fixpoint (any program): ascending, then narrowing."""
        self._loop()
        self.narrowing = True
        for node in list(self.res.states):
            if node[1] in self.heads:
                self._recompute(node)
        self._loop()
        return self.res

    def _loop(self) -> None:
        res, env = self.res, self.env
        code = env.code
        checker = env.checker
        insns, specs = code.insns, code.specs
        queue, queued, states, problems = self.queue, self.queued, res.states, res.problems
        contrib_of, sent_by, rank = res.contrib, self.sent, code.rank
        pop, push, send, recompute = heapq.heappop, heapq.heappush, self._send, self._recompute
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
            chain, pc = node
            spec = specs[pc]
            assert spec is not None
            checker.pc = pc
            checker.problems = []
            env.chain = chain
            edges = transfer[spec.kind](env, pc, insns[pc], spec, state)
            problems[node] = checker.problems
            before = sent_by.get(node)
            if len(edges) == 1 and edges[0][0] == "next":  # the common case
                _, target, out = edges[0]
                succ: Node = (chain, target)
                if succ in contrib_of:
                    send(node, succ, out)
                elif succ not in states:  # first arrival at a new node (_send, inline)
                    contrib_of[succ] = {node: out}
                    states[succ] = out
                    if succ not in queued:
                        queued.add(succ)
                        push(queue, ((chain, rank[target]), succ))
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
                    succ = (chain, target)
                elif kind == "call":
                    succ = (chain + (pc,), target)
                else:
                    succ = (chain[:-1], chain[-1] + 1)
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
        would pop every reached node once, after all its predecessors, and
        never revisit one (nothing is withdrawn, nothing widened): each node
        is visited with the join of what its predecessors sent, in the order
        they sent it, exactly as :meth:`_loop` and :meth:`_send` would."""
        res, env = self.res, self.env
        code = env.code
        checker = env.checker
        insns, specs = code.insns, code.specs
        states, problems, contrib_of = res.states, res.problems, res.contrib
        self.queue.clear()
        self.queued.clear()
        transfer, budget, progress = TRANSFER, self.budget, self.progress
        env.chain = ()
        visits = res.visits
        for pc in code.order:  # every instruction (a program with an unreachable one is
            # rejected before the analysis)
            node: Node = ((), pc)
            state = states.get(node)
            if state is None:  # no feasible edge reaches it
                continue
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
                progress(visits, len(code.order))  # one visit per instruction
            spec = specs[pc]
            assert spec is not None
            checker.pc = pc
            checker.problems = []
            edges = transfer[spec.kind](env, pc, insns[pc], spec, state)
            problems[node] = checker.problems
            if len(edges) == 1:  # only "next" edges here: no call, no frame
                succ: Node = ((), edges[0][1])
                outs = ((succ, edges[0][2]),)
            else:
                joined: dict[Node, State] = {}
                for _kind, target, out in edges:
                    succ = ((), target)
                    prev = joined.get(succ)
                    joined[succ] = out if prev is None else prev.join(out)
                outs = tuple(joined.items())
            for succ, out in outs:
                contrib = contrib_of.get(succ)
                if contrib is None:
                    contrib_of[succ] = {node: out}
                    states[succ] = out
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
        contrib_of = self.res.contrib
        for succ in gone:
            if node in contrib_of.get(succ, {}):
                del contrib_of[succ][node]
                self._recompute(succ)

    def _send(self, src: Node, dst: Node, state: State) -> None:
        res = self.res
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
        if dst in self.joins and not (src[0] == dst[0]
                                      and src[1] in self.env.code.loops[dst[1]].back):
            # the loop is entered with a new state: its widening delay starts
            # over, so that what only the entry changed is joined, not widened
            self.joins[dst] = 0
        self._recompute(dst)

    def _recompute(self, node: Node) -> None:
        res = self.res
        contrib = res.contrib.get(node, {})
        new: State | None = None
        for s in contrib.values():
            new = s if new is None else new.join(s)
        old = res.states.get(node)
        if new is None:
            if old is not None:
                del res.states[node]
                res.problems.pop(node, None)
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
