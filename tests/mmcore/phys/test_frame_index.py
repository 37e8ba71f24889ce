"""Frame indexes split in a low word and a signed high byte."""

import numpy as np
import pytest

from mmcore.constants import MT, FrameState
from mmcore.pagetables.pte import PTE_PFN_SHIFT, PTE_SWAP
from mmcore.phys.compaction.migrate import migrate
from mmcore.phys.physmem import Frames
from mmcore.sources import Source
from tests.mmcore.machines import small_mm

VALUES = [0, 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, (1 << 36) + 5, (1 << 39) - 1,
          -1, -2, -(1 << 31), -(1 << 32) - 7, -(1 << 39)]


def test_indexes_of_up_to_40_bits_read_back_one_by_one_and_in_bulk():
    fr = Frames(64)
    for pfn, v in enumerate(VALUES):
        fr.set_index(pfn, v)
    assert [fr.get_index(p) for p in range(len(VALUES))] == VALUES
    assert fr.indexes(np.arange(len(VALUES))).tolist() == VALUES
    fr.set_indexes(np.arange(20, 20 + len(VALUES)), VALUES)
    assert [fr.get_index(p) for p in range(20, 20 + len(VALUES))] == VALUES


def test_a_small_index_over_a_wide_one_clears_the_high_part():
    fr = Frames(8)
    fr.set_index(3, (1 << 35) + 9)
    fr.set_index(3, 9)
    assert fr.get_index(3) == 9 and fr.index_hi[3] == 0
    fr.set_index(4, -5)
    fr.set_index(4, 5)
    assert fr.get_index(4) == 5


@pytest.mark.parametrize("value", [1 << 39, -(1 << 39) - 1, 1 << 45])
def test_an_index_wider_than_40_bits_is_refused(value):
    fr = Frames(4)
    with pytest.raises(ValueError, match="40 bits"):
        fr.set_index(1, value)
    with pytest.raises(ValueError, match="40 bits"):
        fr.set_indexes(np.array([2]), [value])


def test_pages_mapped_above_16_tib_keep_their_vpn_through_migration_and_swap():
    mm = small_mm(4096)
    p = mm.spawn()
    p.next_va = 1 << 46  # vpns of 34 bits
    va = p.mmap(256 << 12, "none")
    vpns = [(va >> 12) + i for i in range(256)]
    pfns = [p.fault(va + (i << 12)) for i in range(256)]
    assert [mm.frames.get_index(f) for f in pfns] == vpns
    assert all(mm.frames.index_hi[f] == 4 for f in pfns)
    mm.check()
    mm.pa.drain_all()
    dst = mm.pa.rmqueue(mm.phys.zones[0], 0, MT.MOVABLE)
    mm.frames.state[dst] = FrameState.TAIL
    migrate(mm, pfns[0], dst)
    assert mm.frames.get_index(dst) == vpns[0] and p.pt.entry(va) >> PTE_PFN_SHIFT == dst
    mm.check()
    assert mm.reclaim.shrink_node(0, 64, MT.MOVABLE) == 0  # young: activated
    mm.reclaim.shrink_active(0, 1, 256)  # deactivated, accessed bits cleared
    assert mm.reclaim.shrink_node(0, 64, MT.MOVABLE) == 64
    swapped = [i for i in range(256) if mm.mem.read(p.pt.get_pte(va + (i << 12))) & PTE_SWAP]
    assert len(swapped) == 64
    mm.check()
    assert p.fault(va + (swapped[0] << 12)) >= 0 and mm.stats.swapins == 1
    mm.check()


def test_populating_below_16_tib_writes_no_high_part():
    mm = small_mm(8192)
    p = mm.spawn()
    va = p.mmap(2048 << 12, "none")
    assert p.populate(va, 2048) == 2048
    slab = mm.kernel.alloc(Source.SLAB_UNMOVABLE, 0, 100)
    assert not mm.frames.view("index_hi").any()
    mine = np.flatnonzero(mm.frames.view("owner") == p.owner_id)
    assert sorted(mm.frames.indexes(mine).tolist()) == [(va >> 12) + i for i in range(2048)]
    assert mm.frames.get_index(slab) == mm.kernel.seq
    mm.check()
