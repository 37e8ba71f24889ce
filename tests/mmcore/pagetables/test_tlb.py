"""TLB capacity, LRU eviction, sizes and invalidation."""

from mmcore.constants import ORDER_2M, ORDER_4K
from mmcore.pagetables.tlb import PageWalkCache, Tlb, TlbConfig


def test_hit_miss_and_offsets():
    tlb = Tlb(TlbConfig())
    assert tlb.lookup(0x5000) == -1
    tlb.fill(0x5000, ORDER_4K, 77)
    assert tlb.lookup(0x5FFF) == 77
    tlb.fill(0x40_0000, ORDER_2M, 1024)
    assert tlb.lookup(0x40_0000 + 3 * 4096) == 1027
    assert (tlb.hits, tlb.misses) == (2, 1)


def test_lru_eviction_per_size():
    tlb = Tlb(TlbConfig(entries_4k=2))
    tlb.fill(0x1000, ORDER_4K, 1)
    tlb.fill(0x2000, ORDER_4K, 2)
    tlb.lookup(0x1000)  # 0x1000 becomes most recent
    tlb.fill(0x3000, ORDER_4K, 3)  # evicts 0x2000
    assert tlb.lookup(0x2000) == -1
    assert tlb.lookup(0x1000) == 1 and tlb.lookup(0x3000) == 3


def test_invalidate_and_flush():
    tlb = Tlb(TlbConfig())
    tlb.fill(0x1000, ORDER_4K, 1)
    tlb.invalidate(0x1000, ORDER_4K)
    assert tlb.lookup(0x1000) == -1 and tlb.invalidations == 1
    tlb.fill(0x1000, ORDER_4K, 1)
    tlb.flush()
    assert tlb.lookup(0x1000) == -1


def test_pwc_prefers_deepest_level():
    pwc = PageWalkCache(TlbConfig())
    assert pwc.lookup(0x1234_5678_9000, root=5) == (0, 5)
    pwc.fill(0, 0x1234_5678_9000, 10)
    pwc.fill(2, 0x1234_5678_9000, 30)
    assert pwc.lookup(0x1234_5678_9000, root=5) == (3, 30)
    assert pwc.lookup(0x1234_5600_0000, root=5) == (1, 10)  # same PML4E only
