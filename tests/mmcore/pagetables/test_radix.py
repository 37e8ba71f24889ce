"""The radix page table through the three-operation interface, and the PTE format."""

import pytest

from mmcore.constants import ORDER_1G, ORDER_2M, ORDER_4K
from mmcore.errors import PageTableError
from mmcore.pagetables.pte import (
    PTE_LEAF,
    PTE_PRESENT,
    TableMemory,
    make_pte,
    make_swap_pte,
    pte_order,
    pte_pfn,
)
from mmcore.pagetables.radix import RadixPageTable
from mmcore.pagetables.tlb import PageWalkCache, TlbConfig


class Frames:
    def __init__(self):
        self.next, self.live = 100, set()

    def alloc(self):
        self.next += 1
        self.live.add(self.next)
        return self.next

    def free(self, pfn):
        self.live.remove(pfn)


def table(pwc=False):
    fr = Frames()
    mem = TableMemory()
    pt = RadixPageTable(mem, fr.alloc, fr.free, PageWalkCache(TlbConfig()) if pwc else None)
    return pt, mem, fr


def test_pte_format_roundtrip():
    e = make_pte(0x12345, ORDER_2M)
    assert e & PTE_PRESENT and e & PTE_LEAF
    assert pte_pfn(e) == 0x12345 and pte_order(e) == ORDER_2M
    s = make_swap_pte(ORDER_1G)
    assert not s & PTE_PRESENT and pte_order(s) == ORDER_1G


def test_map_get_unmap_4k_allocates_and_frees_tables():
    pt, mem, fr = table()
    assert pt.table_pages() == 1
    va = 0x7F00_1234_5000
    loc = pt.map_page(va)
    assert pt.table_pages() == 4  # root + PUD + PMD + PTE tables
    mem.write(loc, make_pte(42, ORDER_4K))
    assert pt.get_pte(va) == loc
    assert pt.get_pte(va + 0x1000) is None
    assert mem.read(pt.get_pte(va)) == make_pte(42, ORDER_4K)
    pt.unmap_page(va)
    assert pt.get_pte(va) is None
    assert pt.table_pages() == 1 and fr.live == {pt.root}


def test_huge_leaves_live_in_upper_levels():
    pt, mem, _ = table()
    loc2m = pt.map_page(0x4000_0000 + (5 << 21), ORDER_2M)
    mem.write(loc2m, make_pte(512, ORDER_2M))
    assert pt.table_pages() == 3  # root, PUD, PMD
    assert pt.get_pte(0x4000_0000 + (5 << 21) + 0x1234) == loc2m  # any va in the 2 MiB
    loc1g = pt.map_page(0x80_0000_0000, ORDER_1G)
    mem.write(loc1g, make_pte(1 << 18, ORDER_1G))
    assert pt.get_pte(0x80_0000_0000 + 12345) == loc1g
    with pytest.raises(PageTableError):
        pt.map_page(0x4000_0000 + (5 << 21) + 0x1000, ORDER_4K)  # inside a 2 MiB leaf


def test_walk_refs_and_page_walk_cache():
    pt, mem, _ = table(pwc=True)
    va = 0x5555_0000_0000
    mem.write(pt.map_page(va), make_pte(7, ORDER_4K))
    pt.get_pte(va, walk=True)
    assert pt.walk_refs == 4  # cold: one reference per level
    pt.get_pte(va + 0x1000, walk=True)
    assert pt.walk_refs == 5  # PDE cached: only the PTE read
    pt.get_pte(va)  # a software lookup costs no walk references
    assert pt.walk_refs == 5


def test_walk_without_pwc_always_reads_every_level():
    pt, mem, _ = table(pwc=False)
    va = 0x1000_0000
    mem.write(pt.map_page(va), make_pte(7, ORDER_4K))
    for _ in range(3):
        pt.get_pte(va, walk=True)
    assert pt.walk_refs == 12


def test_unmap_of_unmapped_va_raises():
    pt, _, _ = table()
    with pytest.raises(PageTableError):
        pt.unmap_page(0x1000)
