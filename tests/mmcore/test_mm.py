"""Hooks wired into the MM core: decisions, contract checks, no corruption."""

from mmcore.sources import Source
from tests.mmcore.machines import small_mm


class Const:
    def __init__(self, value):
        self.value = value

    def run(self, ctx):
        return self.value


class Boom:
    def run(self, ctx):
        raise ZeroDivisionError("division by zero in program")


def test_placement_engine_picks_a_node_and_bad_nodes_fall_back():
    mm = small_mm(4096, 0, nodes=2)
    p = mm.spawn(home_node=0)
    va = p.mmap(1 << 20, "none")
    mm.hooks.attach("mm_placement", Const(1))
    assert p.fault(va) >= 4096  # node 1
    mm.hooks.attach("mm_placement", Const(3))  # only 2 nodes: contract violated
    assert p.fault(va + 4096) < 4096
    assert mm.hooks.points["mm_placement"].fallbacks == 1
    mm.check()


def test_hugepage_engine_cannot_choose_a_size_not_allowed():
    mm = small_mm(4096)
    p = mm.spawn()
    va = p.mmap(4 << 20, "thp")
    mm.hooks.attach("mm_hugepage", Const(2))  # 1 GiB not allowed here
    p.fault(va)
    assert p.present == [0, 1, 0]
    mm.hooks.attach("mm_hugepage", Const(0))
    p.fault(va + (2 << 20))
    assert p.present == [1, 1, 0]
    mm.check()


def test_raising_engines_never_corrupt_state():
    mm = small_mm(4096, 0, nodes=2)
    for name in ("mm_placement", "mm_hugepage", "mm_lifetime", "mm_reclaim", "mm_zone_resize"):
        mm.hooks.attach(name, Boom())
    p = mm.spawn()
    va = p.mmap(4 << 20, "thp")
    for off in range(0, 4 << 20, 1 << 20):
        p.fault(va + off)
    mm.kernel.alloc(Source.NETBUF, 0, 5)
    mm.reclaim.direct(0, 0, 1)
    mm.check()
    stats = mm.hooks.stats()
    for name in ("mm_placement", "mm_hugepage", "mm_lifetime"):
        assert stats[name]["errors"] == stats[name]["fallbacks"] > 0


def test_lifetime_class_steers_migratetype():
    mm = small_mm(4096)
    mm.hooks.attach("mm_lifetime", Const(1))  # short-lived: reclaimable pageblocks
    pfn = mm.kernel.alloc(Source.NETBUF, 0, 5)
    assert mm.frames.mt[pfn] == 2
    mm.hooks.attach("mm_lifetime", Const(2))
    pfn = mm.kernel.alloc(Source.SLAB_RECLAIMABLE, 0, 5)
    assert mm.frames.mt[pfn] == 0


def test_zone_resize_engine_moves_the_boundary_after_reclaim():
    mm = small_mm(4096, 2048)
    mm.hooks.attach("mm_zone_resize", Const(2))
    mm.reclaim.direct(0, 0, 0)
    assert mm.phys.zones[0].managed == 3072
    mm.check()
