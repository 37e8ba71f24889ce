"""``--check`` catches broken state: one injected corruption per kind of
invariant, each named by the check (kind and place).

Each corruption is checked twice: by the full check (``mm.check()``) and by
the incremental one a ``--check`` run makes after each tick
(``Checker.tick`` after a full check took its snapshot).  Every kind is
caught incrementally except a PTE broken under a frame that did not change
(read only by the full check) and broken list links (walked only then).
"""

import pytest

from mmcore.constants import MT, PAGEBLOCK_ORDER, FrameState
from mmcore.errors import InvariantError
from mmcore.invariants import Checker
from mmcore.pagetables.pte import make_pte
from mmcore.sources import Source
from tests.mmcore.machines import small_mm


def loaded_mm():
    """A small machine with a process, a cached file, kernel pages and slab
    objects, all invariants holding."""
    mm = small_mm(8192, movable=4096)
    p = mm.spawn()
    va = p.mmap(1 << 20, "none")
    for off in range(0, 64 << 12, 4096):
        p.access(va + off)
    f = mm.new_file(256)
    for i in range(32):
        f.read(i)
    mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 100)
    for _ in range(100):
        mm.slab.alloc(mm.slab.by_name["dentry"], 50)
        mm.slab.alloc(mm.slab.by_name["kmalloc-64"], 50)
    mm.check()
    return mm, p, va, f


def caught(mm, match: str, incremental: bool = True) -> None:
    """The corruption made by the caller is named by the full check and,
    if ``incremental``, already by the per-tick check."""
    with pytest.raises(InvariantError, match=match):
        mm.check()
    if incremental:
        with pytest.raises(InvariantError, match=match):
            mm.test_checker.tick()


@pytest.fixture
def state():
    mm, p, va, f = loaded_mm()
    mm.test_checker = Checker(mm)
    mm.test_checker.full()  # the snapshot the incremental check compares with
    mm.test_checker.tick()  # and nothing is wrong yet
    return mm, p, va, f


def test_clean_state_passes(state):
    mm, *_ = state
    mm.check()
    mm.test_checker.tick()


def test_unmerged_free_buddies(state):
    mm, *_ = state
    z = mm.phys.zones[0]
    pfn = next(p for p in range(z.start, z.end, 2) if mm.frames.state[p] == FrameState.BUDDY
               and mm.frames.order[p] >= 1)
    order, mt = mm.frames.order[pfn], mm.frames.mt[pfn]
    mm.pa._del(z, pfn)  # split a free block without merging it back
    mm.pa._add(z, pfn, order - 1, mt)
    mm.pa._add(z, pfn + (1 << (order - 1)), order - 1, mt)
    caught(mm, rf"{z.name}: unmerged free buddies {pfn:#x} and "
               rf"{pfn + (1 << (order - 1)):#x} of order {order - 1}")


def test_page_dropped_from_its_lru_list(state):
    mm, p, va, _ = state
    pfn = p.access(va)
    mm.lru.remove(pfn)
    caught(mm, rf"anon page {pfn:#x} \(owner {p.pid}\) is on no LRU list")


def test_page_cache_page_dropped_from_its_lru_list(state):
    mm, _, _, f = state
    pfn = f.pages[3]
    mm.lru.remove(pfn)
    caught(mm, rf"page-cache page {pfn:#x} \(owner {f.fid}\) is on no LRU list")


def test_lru_count_skewed(state):
    mm, *_ = state
    mm.lru.count[0] += 1
    caught(mm, r"lru 0: counts .* disagree with the pages on it")


def test_kernel_counter_skewed(state):
    mm, *_ = state
    mm.kernel.pages[Source.NETBUF] += 2
    caught(mm, "kernel accounting: netbuf counts 2 pages, its frames hold 0")


def test_swap_counter_skewed(state):
    mm, *_ = state
    mm.stats.swap_used += 1
    caught(mm, "swap accounting: swap_used 1, processes hold 0")


def test_file_counter_skewed(state):
    mm, _, _, f = state
    f.cached += 1
    caught(mm, f"file {f.fid}: cached counts 33 pages, its index holds 32")


def test_free_counter_skewed(state):
    mm, *_ = state
    z = mm.phys.zones[1]
    z.free_pages -= 1
    caught(mm, f"{z.name}: free_pages = {z.free_pages}, nr_free says {z.free_pages + 1}")


def test_invalid_pageblock_migratetype(state):
    mm, *_ = state
    mm.frames.pb_mt[5] = 7
    caught(mm, rf"pageblock 5 \(pfn {5 << PAGEBLOCK_ORDER:#x}\): invalid migratetype 7")


def test_pageblock_in_the_wrong_zone(state):
    mm, *_ = state
    mm.frames.pb_zone[2] = 1
    caught(mm, "pageblock 2 lies in node0/normal but is marked as zone 1")


def test_unmovable_page_in_the_movable_zone(state):
    mm, *_ = state
    movable = mm.phys.zones[1]
    pfn = mm.pa.alloc(0, MT.MOVABLE, 99, 0, 0, 0)
    assert movable.start <= pfn < movable.end
    mm.frames.mt[pfn] = MT.UNMOVABLE
    caught(mm, rf"{movable.name}: non-movable page {pfn:#x} \(migratetype 0\) in a "
               "movable zone")


def test_stale_tlb_entry_after_migration(state):
    mm, p, va, _ = state
    src = p.access(va)  # now in the TLB
    dst = mm.pa.alloc(0, MT.MOVABLE, 99, 0, 0, 0)
    mm.compaction._migrate(mm.phys.zone_of(src), src, dst)
    assert p.access(va) == dst  # the migration invalidated the entry: coherent
    mm.check()
    mm.test_checker.tick()
    p.tlb.fill(va, 0, src)  # a migration that forgot the flush
    caught(mm, rf"pid {p.pid}: stale TLB entry va {va:#x} -> pfn {src:#x} \(order 0\)")


def test_stale_tlb_entry_after_unmap(state):
    mm, p, va, _ = state
    pfn = p.access(va)
    p.munmap(va, 4096)
    p.tlb.fill(va, 0, pfn)
    caught(mm, rf"pid {p.pid}: stale TLB entry va {va:#x} -> pfn {pfn:#x}")


def test_slab_object_miscounted(state):
    mm, *_ = state
    cache = mm.slab.by_name["kmalloc-64"]
    pfn = next(iter(cache.inuse))
    cache.inuse[pfn] += 1
    caught(mm, r"slab kmalloc-64: 100 objects counted, its slabs hold 101")


def test_slab_on_the_wrong_list(state):
    mm, *_ = state
    cache = mm.slab.by_name["dentry"]
    pfn = next(iter(cache.partial[0]))
    del cache.partial[0][pfn]
    cache.full[0].add(pfn)
    caught(mm, rf"slab dentry: full slab {pfn:#x} has \d+ of {cache.objects} objects")


def test_slab_page_freed_under_its_objects(state):
    mm, *_ = state
    cache = mm.slab.by_name["dentry"]
    pfn = next(iter(cache.inuse))
    mm.pa.free(pfn)  # the page goes while the cache still holds it
    mm.kernel.pages[cache.source] -= 1 << cache.order
    caught(mm, rf"slab dentry: slab page {pfn:#x} is not an allocated order-0 block")


def test_double_ownership(state):
    mm, p, va, _ = state
    pfn = p.access(va + 4096)
    mm.frames.order[pfn] = 1  # now the block overlaps its neighbour
    caught(mm, rf"frame {pfn + 1:#x} is covered by 2 blocks")


def test_pte_pointing_elsewhere_is_caught_by_the_full_check():
    mm, p, va, _ = loaded_mm()
    checker = Checker(mm)
    checker.full()
    pfn = p.access(va)
    mm.mem.write(p.pt.get_pte(va), make_pte(pfn + 1, 0))
    p.tlb.flush()
    checker.tick()  # the frame did not change: only the full check reads its PTE
    with pytest.raises(InvariantError, match="does not map its frame"):
        mm.check()


def test_pte_of_a_changed_frame_is_checked_incrementally(state):
    mm, p, va, _ = state
    new = va + (100 << 12)
    pfn = p.access(new)  # a fault: this frame changed since the snapshot
    mm.mem.write(p.pt.get_pte(new), make_pte(pfn + 1, 0))
    p.tlb.flush()
    caught(mm, rf"va {new:#x} does not map its frame {pfn:#x}/0")


def test_free_list_link_broken_is_caught_by_the_full_check(state):
    mm, *_ = state
    z = mm.phys.zones[0]
    head = next(h for h in z.heads if h >= 0 and mm.frames.nxt[h] >= 0)
    mm.frames.prv[mm.frames.nxt[head]] = head + 1
    mm.test_checker.tick()  # counts still agree: the links are walked in full only
    with pytest.raises(InvariantError, match=f"{z.name}: broken prev link"):
        mm.check()


def test_free_list_count_mismatch_is_caught():
    mm = small_mm()
    mm.phys.zones[0].counts[10 * 3 + 1] += 1
    with pytest.raises(InvariantError, match="nr_free.10. = 0, the list counts say 1"):
        mm.check()
