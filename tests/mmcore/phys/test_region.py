"""Regions: exact size, alignment, byte memory, clear failure."""

import pytest

from mmcore.errors import RegionError
from tests.mmcore.machines import fragment, small_mm


def test_region_is_exact_contiguous_and_freed_back():
    mm = small_mm(4096)
    mm.pa.drain_all()
    free = mm.pa.free_pages_node(0)
    r = mm.regions.alloc(300)
    assert r.npages == 300 and r.start % 512 == 0 and len(r.buf) == 300 * 4096
    assert mm.pa.free_pages_node(0) == free - 300
    assert mm.mem.frames[r.start + 299] == (r.buf, 299 * 4096)
    mm.check()
    mm.regions.free(r)
    mm.pa.drain_all()
    assert mm.pa.free_pages_node(0) == free
    mm.check()


def test_region_fails_clearly_without_contiguity():
    mm = small_mm(2048)
    fragment(mm)
    with pytest.raises(RegionError, match="largest free block is order 0"):
        mm.regions.alloc(2)
    assert mm.regions.failures == 1
    mm.check()
