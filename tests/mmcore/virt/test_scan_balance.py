"""The "cost" scan balance: ``get_scan_count``'s cache_trim_mode and cost
fractions, workingset refault detection, and the reclaim hook over it."""

from mmcore.constants import MT
from mmcore.hooks.specs import HOOKS
from mmcore.mm import MM, MMConfig
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.virt.lru import LruList
from mmcore.virt.reclaim import DEF_PRIORITY
from tests.mmcore.hooks.test_specs import Recorder


def cost_mm(pages: int = 32768, balance: str = "cost") -> MM:
    return MM(MachineSpec((NodeSpec(pages),)), MMConfig(scan_balance=balance))


def with_anon_and_file(mm: MM, anon: int, file_pages: int):
    p = mm.spawn()
    va = p.mmap(anon << 12, "none")
    for i in range(anon):
        p.access(va + (i << 12))
    f = mm.new_file(file_pages)
    for i in range(file_pages):
        f.read(i)
    return p, f


def test_plentiful_inactive_file_means_cache_trim_mode():
    mm = cost_mm()
    p, _ = with_anon_and_file(mm, 2000, 1 << DEF_PRIORITY)
    lru = mm.lru.count
    assert lru[LruList.INACTIVE_FILE] >= 1 << DEF_PRIORITY
    assert mm.reclaim.scan_count(0, 2000, 4096) == 0  # SCAN_FILE
    swapped = mm.stats.swapouts
    mm.reclaim.shrink_node(0, 256, MT.MOVABLE)
    assert mm.stats.swapouts == swapped and mm.stats.file_evictions >= 256
    assert mm.reclaim.trim_passes >= 2  # the scan_count call above and the pass
    mm.check()


def test_fixed_balance_swaps_with_the_same_page_cache():
    mm = cost_mm(balance="fixed")
    p, _ = with_anon_and_file(mm, 2000, 1 << DEF_PRIORITY)
    for pfn in range(mm.frames.n):  # clear accessed bits so that anon reclaim evicts
        if mm.frames.owner[pfn] == p.pid:
            p.referenced(pfn, mm.frames.get_index(pfn))
    mm.reclaim.shrink_node(0, 256, MT.MOVABLE)
    assert mm.stats.swapouts > 0  # 30% of the pass from anon
    assert "workingset" not in mm.metrics()


def test_thrashing_ends_cache_trim_mode_and_costs_set_the_fractions():
    mm = cost_mm()
    with_anon_and_file(mm, 2000, 1 << DEF_PRIORITY)
    ws = mm.workingset
    ws.activate[0] += 1  # a refault activated since reclaim last looked
    assert mm.reclaim.scan_count(0, 2000, 4096) == 100 * 60 // 200  # equal costs
    ws.file_cost[0] = 1000  # file refaults are costly: take more from anon
    hi = mm.reclaim.scan_count(0, 2000, 4096)
    ws.file_cost[0], ws.anon_cost[0] = 0, 1000  # swap-outs are costly: less
    lo = mm.reclaim.scan_count(0, 2000, 4096)
    assert lo < 30 < hi
    ws.take_snapshot(0)  # the pass snapshot ends thrashing: trim mode again
    assert mm.reclaim.scan_count(0, 2000, 4096) == 0


def test_lru_note_cost_weights_io_and_decays():
    mm = cost_mm()
    with_anon_and_file(mm, 100, 100)  # 200 LRU pages: costs halve above 50
    ws = mm.workingset
    ws.note_cost(0, False, 1, 3)
    assert ws.anon_cost[0] == 35
    ws.note_cost(0, True, 0, 20)
    assert (ws.anon_cost[0], ws.file_cost[0]) == (17, 10)  # 55 > 200 // 4: both halved


def test_a_refault_within_the_workingset_is_activated():
    mm = cost_mm(4096)
    _, f = with_anon_and_file(mm, 1000, 200)
    pfn = f.pages[5]
    mm.lru.remove(pfn)  # evict page 5 as reclaim would
    f.evict(pfn, 5, 0)
    mm.pa.free(pfn)
    assert 5 in f.shadows
    new = f.read(5)
    assert mm.frames.lru[new] - 1 == LruList.ACTIVE_FILE
    assert (mm.workingset.refaults, mm.workingset.activations) == (1, 1)
    assert mm.workingset.file_cost[0] > 0
    mm.check()


def test_a_refault_beyond_the_workingset_is_not_activated():
    mm = cost_mm(4096)
    _, f = with_anon_and_file(mm, 0, 200)
    pfn = f.pages[5]
    mm.lru.remove(pfn)
    f.evict(pfn, 5, 0)
    mm.pa.free(pfn)
    mm.workingset.age[0] += mm.workingset.size(0) + 1  # many evictions since
    new = f.read(5)
    assert mm.frames.lru[new] - 1 == LruList.INACTIVE_FILE
    assert (mm.workingset.refaults, mm.workingset.activations) == (1, 0)


def test_the_reclaim_hook_still_decides_and_falls_back_to_the_cost_model():
    mm = cost_mm()
    with_anon_and_file(mm, 2000, 1 << DEF_PRIORITY)
    mm.hooks.attach("reclaim", Recorder(100))  # a program taking all from anon
    assert mm.reclaim.split(0, 32, [2000, 0, 4096, 0], MT.MOVABLE) == (100, 0)
    off = HOOKS["reclaim"].field_named("target_pid").offset
    mm.hooks.attach("reclaim", Recorder(100, {off: 99999}))  # invalid target: fallback
    assert mm.reclaim.split(0, 32, [2000, 0, 4096, 0], MT.MOVABLE) == (0, 0)  # trim mode
    assert mm.hooks.stats()["reclaim"]["fallbacks"] == 1
