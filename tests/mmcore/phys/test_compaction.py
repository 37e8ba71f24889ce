"""Compaction on crafted layouts."""

import pytest

from mmcore.constants import MT, FrameState
from mmcore.errors import InvariantError
from mmcore.phys.compaction.control import Result
from mmcore.phys.compaction.migrate import migrate
from mmcore.virt.lru import NR_LRU, LruList, lid_of
from tests.mmcore.machines import fragment, small_mm


def crafted(mm, file_pfns):
    """Put one page-cache page at each of ``file_pfns``; all else free."""
    z = mm.phys.zones[0]
    pa = mm.pa
    pa.drain_all()
    pa.take_range(z, z.start, z.end)
    f = mm.new_file(len(file_pfns))
    for i, pfn in enumerate(file_pfns):
        pa.prep(pfn, 0, MT.MOVABLE, f.fid, i)
        f.pages[i] = pfn
        f.cached += 1
        mm.lru.add(pfn, lid_of(0, LruList.INACTIVE_FILE))
    taken = set(file_pfns)
    for pfn in range(z.start, z.end):
        if pfn not in taken:
            pa.free_one(z, pfn, 0, MT.MOVABLE)
    mm.check()
    return f


def test_even_pages_of_first_block_move_to_the_last():
    mm = small_mm(1024)
    f = crafted(mm, list(range(0, 512, 2)) + [513])
    z = mm.phys.zones[0]
    assert z.nr_free[9] == 0
    assert mm.compaction.compact_zone(z, 9) == Result.SUCCESS
    assert mm.compaction.migrated == 256
    assert mm.frames.state[0] == FrameState.BUDDY and mm.frames.order[0] == 9
    assert all(p >= 512 for p in f.pages)
    mm.check()


def test_scanners_meet_when_memory_is_too_full():
    mm = small_mm(1024)
    # both pageblocks three-quarters full: 256 free pages, no order-9 block possible
    crafted(mm, [p for p in range(1024) if p % 4])
    z = mm.phys.zones[0]
    assert mm.compaction.compact_zone(z, 9) == Result.COMPLETE
    assert mm.compaction.successes == 0
    assert mm.compaction.migrated == 128  # the free scanner ran dry after block 1's free pages
    mm.check()


def test_migration_rewrites_the_pte_and_invalidates_the_tlb():
    mm = small_mm(2048)
    p = mm.spawn()
    va = p.mmap(64 << 10, "none")
    src = p.access(va)
    assert p.tlb.lookup(va) == src
    z = mm.phys.zones[0]
    mm.pa.drain_all()
    dst = mm.pa.rmqueue(z, 0, MT.MOVABLE)  # a free frame to migrate into
    mm.frames.state[dst] = FrameState.TAIL
    mm.compaction._migrate(z, src, dst)
    assert p.tlb.lookup(va) == -1  # invalidated
    assert p.access(va) == dst  # the walk finds the rewritten PTE
    assert mm.frames.owner[src] == 0 and mm.frames.owner[dst] == p.pid
    mm.check()


def test_evacuation_moves_movable_pages_to_the_movable_zone():
    mm = small_mm(2048, 1024)
    f = mm.new_file(64)
    normal, movable = mm.phys.zones[0], mm.phys.zones[1]
    # fill the movable zone first so page cache lands in the normal zone
    hog = mm.new_file(1024)
    for i in range(1024):
        hog.read(i)
    for i in range(64):
        f.read(i)
    in_normal = sum(normal.start <= p < normal.end for p in f.pages)
    assert in_normal > 0
    for i in range(0, 1024, 2):
        mm.free(hog.pages[i])
        hog.pages[i] = -1
        hog.cached -= 1
    mm.compact(0, evacuate_normal=True)
    assert all(movable.start <= p < movable.end for p in f.pages if p >= 0)
    mm.check()


def two_node_anon(pages_each: int = 2048):
    """A two-node machine with one process's 4 KiB pages in node 0's zone."""
    mm = small_mm(pages_each, nodes=2)
    p = mm.spawn(home_node=0)
    va = p.mmap(256 << 12, "none")
    pfns = [p.access(va + (i << 12)) for i in range(256)]
    assert all(mm.phys.zone_of(f).nid == 0 for f in pfns)
    return mm, p, va


def test_compaction_refuses_a_target_zone_on_another_node():
    mm, _, _ = two_node_anon()
    fragment(mm, 2)  # node 1's normal zone: free order-0 targets between slab pages
    src, dst = mm.phys.nodes[0].normal, mm.phys.nodes[1].normal
    with pytest.raises(ValueError, match="another node"):
        mm.compaction.compact_zone(src, -1, target=dst)
    assert mm.compaction.migrated == 0
    mm.check()


def test_a_page_migrated_to_another_node_moves_to_that_nodes_lru():
    mm, p, va = two_node_anon()
    src = p.tlb.lookup(va) if p.tlb.lookup(va) is not None else p.access(va)
    kind = (mm.frames.lru[src] - 1) % NR_LRU
    z1 = mm.phys.nodes[1].normal
    mm.pa.drain_all()
    dst = mm.pa.rmqueue(z1, 0, MT.MOVABLE)
    mm.frames.state[dst] = FrameState.TAIL
    before = [mm.lru.entries[lid_of(n, kind)] for n in range(2)]
    migrate(mm, src, dst)
    assert mm.frames.lru[dst] - 1 == lid_of(1, kind)  # the target node's list of that kind
    assert mm.lru.head[lid_of(1, kind)] == dst  # put back at its head, as putback_lru_page
    assert [mm.lru.entries[lid_of(n, kind)] for n in range(2)] == [before[0] - 1, before[1] + 1]
    assert p.access(va) == dst
    mm.check()


def test_check_rejects_a_page_on_another_nodes_lru():
    mm, p, va = two_node_anon()
    pfn = p.access(va)
    lid = mm.frames.lru[pfn] - 1
    mm.lru.remove(pfn)
    mm.lru.add(pfn, lid_of(1, lid % NR_LRU))  # listed on node 1, lives on node 0
    with pytest.raises(InvariantError, match="wrong kind or node"):
        mm.check()
