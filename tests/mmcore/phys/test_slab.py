"""Slab caches: SLUB's slab orders, partial slabs first, a page freed only
with its last object, shrinkers freeing objects oldest first."""

import pytest

from mmcore.constants import MT, FrameState
from mmcore.phys.slab import SHRINK_BATCH, calculate_order
from mmcore.sources import Source
from tests.mmcore.machines import small_mm

# (object size, slab order, objects per slab) as /proc/slabinfo shows them
# on an 8-CPU x86-64 machine (SLUB, 4 KiB pages)
SLABINFO = [(8, 0, 512), (64, 0, 64), (192, 0, 21), (256, 1, 32), (512, 2, 32),
            (1024, 3, 32), (2048, 3, 16), (4096, 3, 8), (8192, 3, 4)]


@pytest.mark.parametrize(("size", "order", "objects"), SLABINFO)
def test_calculate_order_matches_slabinfo(size, order, objects):
    assert calculate_order(size) == order
    assert (4096 << order) // size == objects


def test_min_objects_grow_with_cpus():
    assert calculate_order(512, nr_cpus=1) == 0  # min_objects 8: one page holds them
    assert calculate_order(512) == 2  # 8 CPUs: min_objects 20, 10 KiB -> order 2
    assert calculate_order(256, nr_cpus=64) == 1  # min_objects 32: 8 KiB


def test_cache_migratetypes_follow_slab_reclaim_account():
    mm = small_mm()
    s = mm.slab
    assert s.by_name["kmalloc-64"].mt == MT.UNMOVABLE
    assert s.by_name["dentry"].mt == MT.RECLAIMABLE
    assert s.by_name["inode_cache"].source == Source.SLAB_RECLAIMABLE
    pfn = s.objects[s.alloc(s.by_name["dentry"], 10)][1]
    assert mm.frames.mt[pfn] == MT.RECLAIMABLE and mm.frames.pb_mt[pfn >> 9] == MT.RECLAIMABLE


def test_objects_fill_a_partial_slab_before_a_new_one():
    mm = small_mm()
    s = mm.slab
    c = s.by_name["kmalloc-512"]  # 32 objects in an order-2 slab
    ids = [s.alloc(c, 10) for _ in range(c.objects + 1)]
    slabs = [s.objects[i][1] for i in ids]
    assert len(set(slabs[:-1])) == 1 and slabs[-1] != slabs[0]
    assert c.full[0] == {slabs[0]} and list(c.partial[0]) == [slabs[-1]]
    assert mm.kernel.pages[Source.SLAB_UNMOVABLE] == 2 << c.order
    assert mm.frames.order[slabs[0]] == c.order
    s.free(ids[0])  # the full slab becomes partial, and is filled again first
    assert list(c.partial[0]) == [slabs[-1], slabs[0]]
    mm.check()


def test_a_slab_page_is_freed_only_with_its_last_object():
    mm = small_mm()
    s = mm.slab
    c = s.by_name["kmalloc-4k"]  # 8 objects per order-3 slab
    slabs = []
    for _ in range(c.min_partial + 1):  # slabs beyond min_partial go back to the buddy
        ids = [s.alloc(c, 10) for _ in range(c.objects)]
        slabs.append((s.objects[ids[0]][1], ids))
    free_before = sum(z.free_pages for z in mm.phys.zones)
    for pfn, ids in slabs:
        for oid in ids[:-1]:
            assert s.free(oid) == 0
        assert mm.frames.state[pfn] == FrameState.ALLOC  # one object keeps the page
    kept = [s.free(ids[-1]) for _, ids in slabs]
    assert kept == [0] * c.min_partial + [8]  # min_partial empty slabs stay cached
    assert len(c.empty[0]) == c.min_partial
    assert s.pages_freed == 8
    mm.pa.drain_all()
    assert sum(z.free_pages for z in mm.phys.zones) >= free_before + 8
    mm.check()


def test_expiry_frees_objects_at_their_tick():
    mm = small_mm()
    s = mm.slab
    c = s.by_name["kmalloc-64"]
    short, long_ = s.alloc(c, 5), s.alloc(c, 50)
    mm.tick = 5
    s.expire(mm.tick)
    assert short not in s.objects and long_ in s.objects and c.nr_objects == 1


def test_shrinker_frees_oldest_objects_and_pages_only_of_emptied_slabs():
    mm = small_mm(16384)
    s = mm.slab
    d = s.by_name["dentry"]  # 21 per slab
    ids = [s.alloc(d, 1000) for _ in range(21 * 40)]
    assert d.slabs() == 40
    freed = s.do_shrink(d, 1000, 1000)  # scanned as much as was eligible: all pressure
    # 4 * 1000 / 2 * 840 / 1001 = 1678 to scan: every object, in 13 batches
    assert s.shrunk == len(ids) and d.nr_objects == 0 and d.nr_deferred == 1678 - 13 * 128
    assert freed == 40 - d.min_partial and d.slabs() == d.min_partial
    mm.check()
    # objects go oldest first: a light pass takes the first ones only
    ids = [s.alloc(d, 1000) for _ in range(21 * 20)]
    s.do_shrink(d, 10, 10_000)  # delta = 4 * 10 / 2 * 420 / 10001 = 0: deferred nothing
    assert d.nr_objects == 420
    d.nr_deferred = SHRINK_BATCH  # work carried from earlier passes is done now
    s.do_shrink(d, 0, 10_000)
    assert d.nr_objects == 420 - SHRINK_BATCH
    assert all(i not in s.objects for i in ids[:SHRINK_BATCH])
    assert all(i in s.objects for i in ids[SHRINK_BATCH:])
    mm.check()


def test_one_object_pins_its_slab_against_the_shrinker():
    mm = small_mm()
    s = mm.slab
    d, k = s.by_name["dentry"], s.by_name["kmalloc-192"]
    ids = [s.alloc(d, 1000) for _ in range(d.objects)]
    pinned_slab = s.objects[ids[0]][1]
    s.alloc(k, 1000)  # unmovable objects are never shrunk
    for oid in ids[1:]:
        s.free(oid)
    assert s.do_shrink(d, 0, 0) == 0  # the last dentry goes; the slab stays cached (empty)
    assert d.nr_objects == 0 and pinned_slab in d.empty[0]
    assert k.nr_objects == 1
    mm.check()


def test_reclaim_shrinks_slab_in_proportion_to_lru_scanning():
    mm = small_mm(4096)
    s = mm.slab
    d = s.by_name["dentry"]
    for _ in range(2000):
        s.alloc(d, 1000)
    f = mm.new_file(8192)
    for i in range(2000):
        f.read(i)
    assert mm.reclaim.shrink_node(0, 64, MT.MOVABLE) >= 64
    # less than a batch of pressure: nothing scanned yet, the work deferred
    assert s.shrunk == 0 and d.nr_deferred > 0
    mm.reclaim.shrink_node(0, 64, MT.MOVABLE)
    # the deferred work and the new make whole batches: some dentries, not all
    assert 0 < s.shrunk < 2000 and s.shrunk % SHRINK_BATCH == 0
    mm.check()
