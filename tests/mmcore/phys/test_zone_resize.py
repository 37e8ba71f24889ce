"""Moving the normal/movable boundary in pageblocks."""

from mmcore.constants import MT
from mmcore.sources import Source
from tests.mmcore.machines import small_mm


def total_free(mm):
    mm.pa.drain_all()
    return sum(z.free_pages for z in mm.phys.zones)


def test_grow_and_shrink_keep_free_memory():
    mm = small_mm(4096, 2048)
    normal, movable = mm.phys.zones[0], mm.phys.zones[1]
    free = total_free(mm)
    assert mm.resize_zone(0, 2) == 2
    assert (normal.managed, movable.managed) == (3072, 1024)
    assert total_free(mm) == free
    mm.check()
    assert mm.resize_zone(0, -3) == -3
    assert (normal.managed, movable.managed) == (1536, 2560)
    assert total_free(mm) == free
    mm.check()


def test_shrink_stops_at_an_unmovable_page():
    mm = small_mm(4096, 0)
    normal = mm.phys.zones[0]
    z = normal
    mm.pa.drain_all()
    mm.pa.take_range(z, z.start, z.end)
    pinned = 4096 - 3 * 512 + 7  # inside the third pageblock from the top
    mm.pa.prep(pinned, 0, MT.UNMOVABLE, 4, 0)  # a slab page (owner 4)
    mm.kernel.pages[3] += 1  # counted as the kernel counts its slab_unmovable pages
    mm.pa.free_range(0, pinned)
    mm.pa.free_range(pinned + 1, 4096)
    assert mm.resize_zone(0, -5) == -2
    assert normal.end == 4096 - 2 * 512
    mm.check()


def test_grown_normal_zone_takes_unmovable_allocations():
    mm = small_mm(4096, 3584)
    mm.resize_zone(0, 4)
    normal = mm.phys.zones[0]
    pfns = [mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 10) for _ in range(1500)]
    assert all(0 <= p < normal.end for p in pfns)
    assert max(pfns) >= 512  # beyond the original normal zone
    mm.check()
