"""States kept apart per (call chain, pc): routing, its bound, liveness,
and what the verdict's consumers (log, facts, stats) see of the sets.

Accepted programs beside rejected twins whose uses are not consistent on
each path are in ``tests/data/verifier/paths.cases``.
"""

from __future__ import annotations

from bpfvm.asm.assembler import assemble
from bpfvm.stdhelpers import standard_helpers
from verifier import verify
from verifier.cfg import build
from verifier.domains.state import State, initial
from verifier.domains.values import UNINIT, Obj, Val, const, pointer
from verifier.liveness import live_in, split_points
from verifier.partition import MAX_STATES, Router

HELPERS = standard_helpers()
CTX = Obj("buf", "ctx", 8)
STACK = Obj("stack", 0, 512)


def _with_r3(v: Val) -> State:
    return initial({1: pointer(CTX), 3: v})


def _route(router: Router, states: dict, st: State) -> int:
    node = router.route((), 0, 0, st, states)
    states.setdefault(node, st)
    return node[2]


def test_kinds_of_a_live_register_are_kept_apart() -> None:
    router, states = Router([(3,)]), {}
    assert _route(router, states, _with_r3(pointer(CTX))) == 0
    assert _route(router, states, _with_r3(const(5))) == 1
    assert _route(router, states, _with_r3(pointer(CTX, 4))) == 0  # same kinds: joined
    assert _route(router, states, _with_r3(pointer(STACK, -8))) == 2


def test_a_dead_register_does_not_split() -> None:
    router, states = Router([(1,)]), {}  # only r1 is live
    assert _route(router, states, _with_r3(pointer(CTX))) == 0
    assert _route(router, states, _with_r3(const(5))) == 0


def test_a_subsumed_state_joins_the_one_that_covers_it() -> None:
    router, states = Router([(3,)]), {}
    assert _route(router, states, _with_r3(UNINIT)) == 0  # unset: no path reads it
    assert _route(router, states, _with_r3(const(5))) == 0
    assert _route(router, states, _with_r3(pointer(CTX))) == 0


def test_past_the_bound_new_kinds_share_the_last_state() -> None:
    router, states = Router([(3,)]), {}
    kinds = [pointer(CTX), const(1), pointer(STACK, -8), pointer(Obj("mem", "x", 8)),
             pointer(Obj("region", 0, 64)), UNINIT]
    parts = [_route(router, states, _with_r3(v)) for v in kinds]
    assert parts == [0, 1, 2, 3, 3, 3] and MAX_STATES == 4
    assert _route(router, states, _with_r3(pointer(CTX, 2))) == 0  # its route stays


def test_states_keep_the_partition_between_join_points() -> None:
    router = Router([None])
    assert router.route((), 0, 2, _with_r3(const(1)), {}) == ((), 0, 2)


def test_liveness() -> None:
    code = build(assemble("r3 = 1\nif r2 > 3 goto +1\nr3 = r4\nr0 = r3\nexit\n", "l.s").insns)
    live = live_in(code)
    regs = [{r for r in range(11) if live[pc] >> r & 1} for pc in range(5)]
    assert regs == [{2, 4}, {2, 3, 4}, {4}, {3}, {0}]
    points = split_points(code)
    assert points[3] == (3,) and points.count(None) == 4  # the join at pc 3, r3 live


PTR_OR_SCALAR = """
r6 = *(u8 *)(r1 + 0)
*(u64 *)(r10 - 8) = 0
r2 = r1
if r6 > 9 goto +2
r2 = r10
r2 += -8
r0 = *(u8 *)(r2 + 7)
exit
"""


def test_log_facts_and_stats_show_each_state() -> None:
    v = verify(assemble(PTR_OR_SCALAR, "p.s"), helpers=HELPERS, ctx_size=8, log_level=2)
    assert v.accepted and v.facts is not None
    at_join = [line for line in v.log if ": pc 6: " in line]
    assert len(at_join) == 2
    assert "(state 1 of 2)" in at_join[0] and "(state 2 of 2)" in at_join[1]
    assert v.facts.memory[6] == "mixed"  # the context on one path, the stack on the other
    assert v.facts.memory[0] == "buf"
    assert v.stats["states"] == v.stats["nodes"] + 2  # pc 6 and 7 hold two states each
    r2 = v.facts.reg(6, 2)  # the union of the two: no single type
    assert r2 is not None and not r2.is_ptr


def test_a_helper_reads_only_its_arguments() -> None:
    code = build(assemble("r3 = 1\nr1 = 2\ncall 5\nexit\n", "h.s").insns)  # ktime: no argument
    assert live_in(code)[2] & 0b111110 == 0b111110  # without the table: r1-r5
    assert live_in(code, HELPERS)[2] == 0
    assert HELPERS.get(5) is not None and not HELPERS.get(5).args
