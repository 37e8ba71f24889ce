"""The check mode catches broken state."""

import pytest

from mmcore.errors import InvariantError
from mmcore.pagetables.pte import make_pte
from tests.mmcore.machines import small_mm


def test_clean_state_passes():
    mm = small_mm()
    p = mm.spawn()
    p.fault(p.mmap(1 << 20, "none"))
    mm.check()


def test_double_ownership_is_caught():
    mm = small_mm()
    p = mm.spawn()
    va = p.mmap(1 << 20, "none")
    pfn = p.fault(va)
    mm.frames.order[pfn] = 1  # now the block overlaps its neighbour
    with pytest.raises(InvariantError):
        mm.check()


def test_free_list_count_mismatch_is_caught():
    mm = small_mm()
    mm.phys.zones[0].counts[10 * 3 + 1] += 1
    with pytest.raises(InvariantError, match="list counts? says?"):
        mm.check()


def test_pte_pointing_elsewhere_is_caught():
    mm = small_mm()
    p = mm.spawn()
    va = p.mmap(1 << 20, "none")
    pfn = p.fault(va)
    mm.mem.write(p.pt.get_pte(va), make_pte(pfn + 1, 0))
    with pytest.raises(InvariantError, match="does not map its frame"):
        mm.check()
