"""Hook dispatch: context packing, validation, fallback counting."""

import struct

from bpfvm.isa.bits import s64
from mmcore.hooks.dispatch import HookTable, ctx_struct
from mmcore.hooks.specs import HOOKS, LIFETIME, ZONE_RESIZE


class Const:
    def __init__(self, value):
        self.value, self.seen = value, []

    def run(self, ctx):
        self.seen.append(bytes(ctx))
        return self.value


class Boom:
    def run(self, ctx):
        raise RuntimeError("pc 3: out of bounds")


def table():
    return HookTable([(LIFETIME, lambda *a: 0), (ZONE_RESIZE, lambda *a: 7)])


def test_layouts_pack_to_their_declared_size():
    for spec in HOOKS.values():
        assert ctx_struct(spec).size == spec.ctx_size


def test_default_without_engine():
    t = table()
    assert t.call("mm_zone_resize", (0,) * 8) == 7
    assert t.points["mm_zone_resize"].calls == 1


def test_engine_sees_packed_context_and_decides():
    t = table()
    eng = Const(2)
    t.attach("mm_lifetime", eng)
    assert t.call("mm_lifetime", (3, 1, 9, 100)) == 2
    assert eng.seen == [struct.pack("<IIII", 3, 1, 9, 100)]
    assert t.points["mm_lifetime"].fallbacks == 0


def test_out_of_range_falls_back_and_counts():
    t = table()
    t.attach("mm_lifetime", Const(3))  # range is 0..2
    assert t.call("mm_lifetime", (0, 0, 0, 0)) == 0
    t.attach("mm_lifetime", Const(1))
    assert t.call("mm_lifetime", (0, 0, 0, 0), valid=lambda r: r != 1) == 0
    assert t.points["mm_lifetime"].fallbacks == 2


def test_signed_return_values():
    assert s64((1 << 64) - 3) == -3
    t = table()
    t.attach("mm_zone_resize", Const((1 << 64) - 3))
    assert t.call("mm_zone_resize", (0,) * 8) == -3
    t.attach("mm_zone_resize", Const(-(1 << 20)))  # below -65536
    assert t.call("mm_zone_resize", (0,) * 8) == 7


def test_raising_engine_is_a_counted_fallback():
    t = table()
    t.attach("mm_zone_resize", Boom())
    assert t.call("mm_zone_resize", (0,) * 8) == 7
    hp = t.points["mm_zone_resize"]
    assert (hp.fallbacks, hp.errors) == (1, 1)
    assert "out of bounds" in hp.last_error
    t.detach("mm_zone_resize")
    assert not t.attached("mm_zone_resize")


def _jit(text):
    from bpfvm.asm.assembler import assemble
    from bpfvm.jit.engine import Jit
    from mmcore.hooks.helpers import policy_helpers

    return Jit(assemble(text), policy_helpers(), checked=True)


def test_jit_engines_are_bound_to_the_context_buffer():
    t = table()
    # r0 = scanned_unmovable - scanned_movable: a genuine -1 is not a fault
    eng = _jit("r0 = *(u64 *)(r1 + 0)\nr2 = *(u64 *)(r1 + 8)\nr0 -= r2\nexit\n")
    t.attach("zone_resize", eng)
    assert t.points["zone_resize"].fast is not None
    assert t.call("zone_resize", (5, 6) + (0,) * 6) == -1
    assert t.call("zone_resize", (9, 1) + (0,) * 6) == 8
    assert t.points["zone_resize"].fallbacks == 0
    t.detach("zone_resize")
    assert t.points["zone_resize"].fast is None


def test_a_faulting_bound_jit_is_a_counted_fallback():
    t = table()
    t.attach("zone_resize", _jit("r0 = *(u64 *)(r1 + 64)\nexit\n"))  # past the context
    assert t.call("zone_resize", (0,) * 8) == 7
    hp = t.points["zone_resize"]
    assert (hp.fallbacks, hp.errors) == (1, 1) and "invalid read" in hp.last_error
