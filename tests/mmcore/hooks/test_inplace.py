"""The in-place context writers of the reclaim, zone_resize and lifetime
hooks against :meth:`HookTable.decide` (which packs a tuple): the program
sees the same context bytes, and the result, the fallback and the counters
are the same, for results in range, out of range, negative and faults."""

from __future__ import annotations

import random

import pytest

from bpfvm.isa.bits import M64
from mmcore.hooks.dispatch import HookTable
from mmcore.hooks.inplace import LifetimeContext, ReclaimContext, ZoneResizeContext
from mmcore.hooks.specs import LIFETIME, RECLAIM, ZONE_RESIZE


class Scripted:
    """An engine returning the values it is given in turn (an exception
    instance is raised), recording the context bytes of every call; it
    writes ``target`` into the reclaim context's target_pid field."""

    def __init__(self, results, target: int = 0) -> None:
        self.results, self.seen, self.target = list(results), [], target

    def run(self, ctx: bytearray) -> int:
        self.seen.append(bytes(ctx))
        if self.target and len(ctx) == RECLAIM.ctx_size:
            off = RECLAIM.field_named("target_pid").offset
            ctx[off:off + 4] = self.target.to_bytes(4, "little")
        r = self.results.pop(0)
        if isinstance(r, Exception):
            raise r
        return r & M64


def tables(spec, results, target: int = 0):
    out = []
    for _ in range(2):
        t = HookTable(((spec, lambda *a: 7 if spec is not ZONE_RESIZE else 3),))
        eng = Scripted(results, target)
        t.attach(spec.name, eng)
        out.append((t, eng))
    return out


def counters(t, spec) -> tuple:
    hp = t.points[spec.name]
    return hp.calls, hp.fallbacks, hp.errors


RESULTS = [0, 1, 2, 3, 99, 100, 101, -1, -5, 1 << 16, (1 << 16) + 1, -(1 << 16), 1 << 40,
           RuntimeError("boom")]


@pytest.mark.parametrize("seed", range(3))
def test_reclaim_context_matches_a_packed_call(seed):
    rng = random.Random(seed)
    (ref, ref_eng), (t, eng) = tables(RECLAIM, RESULTS, target=rng.randrange(1, 50))
    ctx = ReclaimContext(t)
    off = RECLAIM.field_named("target_pid").offset
    for _ in RESULTS:
        vals = [rng.randrange(1 << 20) for _ in range(5)] + [rng.randrange(201), 3, 2, 1, 1,
                                                             rng.randrange(1 << 30)]
        packed = (*vals[:8], 0, *vals[8:])
        want_r0, want_ctx = ref.decide("reclaim", packed, default_args=(1, 2))
        got = ctx.decide(*vals)
        if want_ctx is None:
            assert got is None
        else:
            assert got == (want_r0, int.from_bytes(want_ctx[off:off + 4], "little"))
    assert eng.seen == ref_eng.seen and len(eng.seen) == len(RESULTS)
    assert counters(t, RECLAIM) == counters(ref, RECLAIM)
    assert counters(t, RECLAIM)[1] > 0  # fallbacks were exercised


def test_zone_resize_context_matches_a_packed_call():
    rng = random.Random(1)
    (ref, ref_eng), (t, eng) = tables(ZONE_RESIZE, RESULTS)
    ctx = ZoneResizeContext(t)
    got, want = [], []
    for _ in RESULTS:
        vals = [rng.randrange(1 << 33) for _ in range(8)]
        want.append(ref.call("zone_resize", vals))
        got.append(ctx.decide(*vals))
    assert got == want and -1 in got and -(1 << 16) in got and 3 in got
    assert eng.seen == ref_eng.seen
    assert counters(t, ZONE_RESIZE) == counters(ref, ZONE_RESIZE)


def test_lifetime_context_matches_a_packed_call():
    rng = random.Random(2)
    (ref, ref_eng), (t, eng) = tables(LIFETIME, RESULTS)
    ctx = LifetimeContext(t)
    got, want = [], []
    for _ in RESULTS:
        source, order, site = rng.randrange(6), rng.randrange(4), rng.randrange(1 << 34)
        want.append(ref.call("lifetime", (source, order, site, 0)))
        got.append(ctx.decide(source, order, site))
    assert got == want and {0, 1, 2, 7} <= set(got)
    assert eng.seen == ref_eng.seen
    assert counters(t, LIFETIME) == counters(ref, LIFETIME)


def test_without_an_engine_the_builtin_decides_and_the_call_counts():
    t = HookTable(((LIFETIME, lambda *a: 2), (ZONE_RESIZE, lambda *a: -4)))
    assert LifetimeContext(t).decide(1, 0, 5) == 2
    assert ZoneResizeContext(t).decide(*range(8)) == -4
    assert counters(t, LIFETIME) == (1, 0, 0) and counters(t, ZONE_RESIZE) == (1, 0, 0)
