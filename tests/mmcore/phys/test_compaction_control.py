"""Compaction control: compaction_suitable, deferral, skip bits, modes,
pinned pages and kcompactd."""

from mmcore.constants import MT, FrameState
from mmcore.mm import MM, MMConfig
from mmcore.phys.compaction.control import (
    COMPACT_MAX_DEFER_SHIFT,
    DeferState,
    Mode,
    Result,
    compaction_defer_reset,
    compaction_deferred,
    compaction_restarting,
    compaction_suitable,
    defer_compaction,
)
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.sources import KERNEL_OWNER, Source
from tests.mmcore.machines import small_mm
from tests.mmcore.phys.test_compaction import crafted

SLAB = KERNEL_OWNER[Source.SLAB_UNMOVABLE]


def test_deferral_skips_attempts_doubling_up_to_the_max_shift():
    d = DeferState()
    assert not compaction_deferred(d, 9)  # nothing failed yet
    skipped = []
    for _ in range(COMPACT_MAX_DEFER_SHIFT + 2):
        defer_compaction(d, 9)
        n = 0
        while compaction_deferred(d, 9):
            n += 1
        skipped.append(n)
    # 1 << shift attempts are considered, the last one runs: 2^s - 1 skipped
    assert skipped == [1, 3, 7, 15, 31, 63, 63, 63]
    assert d.shift == COMPACT_MAX_DEFER_SHIFT
    assert compaction_restarting(d, 9)
    assert not compaction_deferred(d, 8)  # a lower order than the one that failed
    compaction_defer_reset(d, 9, True)
    assert (d.shift, d.considered, d.order_failed) == (0, 0, 10)
    assert not compaction_restarting(d, 9)


def test_suitable_needs_the_gap_and_a_fragmentation_failure():
    mm = small_mm(4096)
    z = mm.phys.zones[0]
    mm.pa.drain_all()
    # all memory free in big blocks: fragmentation index -1000 (would succeed)
    assert compaction_suitable(z, 9, 0, 500)
    # fragmented: every odd frame taken -> free pages only of order 0
    from tests.mmcore.machines import fragment
    fragment(mm)
    assert z.free_pages == 2048
    assert compaction_suitable(z, 9, 0, 500)  # index near 1000: fragmentation
    assert not compaction_suitable(z, 9, 0, 1000)  # threshold above every index
    assert not compaction_suitable(z, 11, 0, 500)  # 2 << 11 = 4096 > free pages


def test_a_block_with_only_pinned_pages_gets_a_skip_bit_and_kswapd_sleep_resets_it():
    mm = small_mm(1024)
    f = crafted(mm, list(range(0, 512, 2)) + [513])
    z = mm.phys.zones[0]
    mm.pinned.update(f.pages[:256])  # block 0's pages, as if pinned for DMA
    c = mm.compaction
    assert c.compact_zone(z, 9, mode=Mode.SYNC_LIGHT, direct=True) == Result.COMPLETE
    assert c.migrated == 0 and c.isolate_failed == 256
    assert c.skip[0] == 1 and c.flush[z.zid]
    scanned = c.scanned
    c.compact_zone(z, 9, mode=Mode.SYNC_LIGHT, direct=True)
    assert c.scanned == scanned  # the skipped block was not scanned again
    c.compact_zone(z, 9, mode=Mode.SYNC, direct=True)
    assert c.scanned == scanned + 256  # SYNC ignores the skip bits
    mm.kswapd_sleep(0, 0, 1)
    assert c.skip[0] == 0 and not c.flush[z.zid]
    mm.pinned.clear()
    assert c.compact_zone(z, 9, mode=Mode.SYNC_LIGHT, direct=True) == Result.SUCCESS
    assert c.migrated == 256
    mm.check()


def test_async_gives_up_on_a_chunk_with_an_unmovable_page_sync_light_does_not():
    for mode, moved in ((Mode.ASYNC, 0), (Mode.SYNC_LIGHT, 256)):
        mm = small_mm(1024)
        crafted(mm, list(range(1, 512, 2)) + [513])
        z = mm.phys.zones[0]
        assert mm.frames.state[0] == FrameState.BUDDY and mm.frames.order[0] == 0
        mm.pa._del(z, 0)
        mm.pa.prep(0, 0, MT.UNMOVABLE, SLAB, 0)  # one unmovable page, block stays MOVABLE
        mm.kernel.pages[Source.SLAB_UNMOVABLE] += 1  # the kernel counts its pages
        mm.compaction.compact_zone(z, 9, mode=mode, direct=True)
        assert mm.compaction.migrated == moved
        mm.check()


def test_direct_compaction_defers_a_zone_after_a_sync_failure():
    mm = small_mm(1024)
    f = crafted(mm, list(range(1, 1024, 2)))  # free pages only of order 0
    mm.pinned.update(f.pages)
    z = mm.phys.zones[0]
    c = mm.compaction
    assert not c.direct(z, 2, Mode.ASYNC)
    assert c.runs == 1 and c.defer[z.zid].shift == 0  # async failures do not defer
    assert not c.direct(z, 2, Mode.SYNC_LIGHT)
    assert c.runs == 2 and c.defer[z.zid].shift == 1
    assert not c.direct(z, 2, Mode.SYNC_LIGHT)  # deferred: no run
    assert c.runs == 2 and c.deferred == 1
    assert not c.direct(z, 2, Mode.SYNC_LIGHT)  # the second of 1 << 1 attempts runs
    assert c.runs == 3 and c.defer[z.zid].shift == 2
    mm.pinned.clear()
    assert not c.direct(z, 2, Mode.SYNC_LIGHT)  # deferred still
    assert c.direct(z, 2, Mode.SYNC)  # SYNC (the lowest priority) ignores deferral
    assert c.defer[z.zid].shift == 0


def test_kswapd_going_to_sleep_wakes_kcompactd_which_compacts():
    mm = MM(MachineSpec((NodeSpec(4096),)), MMConfig(kcompactd_interval=10**9))
    crafted(mm, list(range(0, 512, 2)) + [b * 512 + 1 for b in range(1, 8)])
    k = mm.compaction.kcompactd
    mm.kswapd_sleep(0, 9, 1)
    assert k.wakeups == [1]
    mm.background()
    assert k.runs == [1] and k.successes == [1] and k.migrated == [256]
    assert mm.phys.zones[0].nr_free[9] >= 1
    mm.kswapd_sleep(0, 9, 1)  # the block exists: kcompactd is not woken
    assert k.wakeups == [1]
    mm.check()
