"""The OOM killer: victim choice by oom_badness, kills that free memory for
the failing allocation, the faulting process as its own victim, and nothing
to kill (the allocation fails, no exception)."""

import pytest

from mmcore.constants import MT
from mmcore.errors import OutOfMemoryError
from mmcore.sources import KERNEL_OWNER, Source
from mmcore.virt.oom_kill import OOM_SCORE_ADJ_MIN, oom_badness
from tests.mmcore.machines import small_mm

SLAB = KERNEL_OWNER[Source.SLAB_UNMOVABLE]


def fill_normal(mm) -> int:
    """Unmovable slab pages, taken without reclaim, until the normal zone
    gives no more; return how many."""
    n = 0
    while mm.pa.alloc(0, MT.UNMOVABLE, SLAB, n, 0, 0) >= 0:
        n += 1
    mm.kernel.pages[Source.SLAB_UNMOVABLE] += n  # the kernel's own count of its pages
    return n


def touch(p, va: int, pages: int) -> None:
    for off in range(0, pages * 4096, 4096):
        assert p.fault(va + off) >= 0


def test_badness_is_rss_swap_and_page_tables_plus_adj():
    mm = small_mm(4096)
    p = mm.spawn()
    touch(p, p.mmap(64 << 12, "none"), 64)
    total = mm.phys.spec.total_pages
    assert oom_badness(p, total) == 64 + p.pt.table_pages()
    p.oom_score_adj = 500
    assert oom_badness(p, total) == 64 + p.pt.table_pages() + total // 2
    p.oom_score_adj = OOM_SCORE_ADJ_MIN
    assert oom_badness(p, total) is None


def test_the_largest_process_is_killed_and_the_allocation_succeeds():
    # a normal zone full of slab; processes live in the movable zone, so
    # reclaim for an unmovable allocation has nothing to take
    mm = small_mm(4096, movable=2048)
    small, big = mm.spawn(), mm.spawn()
    touch(small, small.mmap(8 << 12, "none"), 8)
    touch(big, big.mmap(256 << 12, "none"), 256)
    fill_normal(mm)
    pfn = mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 100)  # GFP_KERNEL: must succeed
    assert pfn >= 0
    assert [k.pid for k in mm.oom.kills] == [big.pid]
    assert not big.alive and big.pid not in mm.procs and small.alive
    assert mm.pa.stats.oom_retries == 1
    m = mm.metrics()
    assert m["oom_kills"] == 1 and m["oom_killed_pages"] >= 256
    mm.check()


def test_an_unkillable_process_is_spared():
    mm = small_mm(4096, movable=2048)
    small, big = mm.spawn(), mm.spawn()
    touch(small, small.mmap(8 << 12, "none"), 8)
    touch(big, big.mmap(256 << 12, "none"), 256)
    big.oom_score_adj = OOM_SCORE_ADJ_MIN
    fill_normal(mm)
    mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 100)
    assert [k.pid for k in mm.oom.kills] == [small.pid] and big.alive
    mm.check()


def test_atomic_and_costly_allocations_do_not_kill():
    mm = small_mm(4096, movable=2048)
    p = mm.spawn()
    touch(p, p.mmap(64 << 12, "none"), 64)
    fill_normal(mm)
    assert mm.kernel.alloc(Source.NETBUF, 0, 10) < 0  # GFP_ATOMIC-like
    assert mm.kernel.alloc(Source.SLAB_UNMOVABLE, 4, 10) < 0  # > PAGE_ALLOC_COSTLY_ORDER
    assert not mm.oom.kills and p.alive


def test_the_faulting_process_as_victim_exits_when_its_fault_returns():
    mm = small_mm(4096, movable=2048)
    p = mm.spawn()
    va = p.mmap(8 << 20, "none")
    touch(p, va, 4)
    fill_normal(mm)
    # a page 4 MiB away needs a new page-table page (unmovable): nothing to
    # reclaim in the normal zone, and p is the only process
    assert p.fault(va + (4 << 20)) == -1
    assert [k.pid for k in mm.oom.kills] == [p.pid]
    assert not p.alive and p.pid not in mm.procs and mm.current is None
    mm.check()


def test_nothing_to_kill_fails_the_allocation_and_spawn_reports_it():
    mm = small_mm(4096, movable=2048)
    fill_normal(mm)
    assert mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 10) < 0
    with pytest.raises(OutOfMemoryError, match="cannot create a process"):
        mm.spawn()
    assert mm.oom.no_victim == 2 and not mm.oom.kills
    assert mm.metrics()["spawn_failures"] == 1
    mm.check()
