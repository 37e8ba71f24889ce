"""Processes: VMAs, anonymous faults (4 KiB, 2 MiB THP, 1 GiB: the fault
path is :mod:`mmcore.virt.faults`), munmap, exit, the translation path
(TLB, walk, accessed bits) and the rmap callbacks that migration and
reclaim use.  Every PTE access goes through the page table's
``map_page`` / ``unmap_page`` / ``get_pte`` (on the built-in radix table a
fault uses its ``entry`` and ``map_pte``, the same walks without building a
PTE place, and munmap reads a PTE table's slots in use at once with
``pte_slots``).  A fault walks the table once: ``map_page`` goes on from
where the fault's lookup stopped.  :meth:`Process.populate` faults a run of
pages in one call (:mod:`mmcore.virt.populate`).

A THP partly covered by munmap is split (``split_huge_pmd`` and
``split_huge_page`` at once: Linux may defer the folio split to the
deferred-split shrinker); the pages left stay mapped as 4 KiB pages.
A 2 MiB fault's allocation flags follow ``transparent_hugepage/defrag``
and the VMA's madvise flag (``vma_thp_gfp_mask``); a 1 GiB fault takes a
page of the hugetlb pool (:mod:`mmcore.phys.hugetlb`), never a buddy block.

Differences from Linux: a 1 GiB page partly covered by munmap is unmapped
whole (hugetlbfs refuses such an munmap); a 1 GiB fault the pool cannot
serve falls back to a smaller page (hugetlbfs would SIGBUS); a swapped-out
page is faulted back as a fresh page of the size the policy picks then;
1 GiB pages are never reclaimed.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmcore.constants import (
    MT,
    ORDER_1G,
    ORDER_2M,
    ORDER_4K,
    PAGE_SHIFT,
)
from mmcore.errors import PageTableError
from mmcore.pagetables.pte import (
    PTE_ACCESSED,
    PTE_PRESENT,
    PTE_SWAP,
    U64,
    PageTable,
    PteLoc,
    make_pte,
    make_swap_pte,
    pte_order,
    pte_pfn,
)
from mmcore.pagetables.radix import SHIFTS, RadixPageTable
from mmcore.pagetables.tlb import Tlb
from mmcore.virt.faults import SIZE_ORDERS, AnonFaults
from mmcore.virt.lru import LruList, lid_of
from mmcore.virt.populate import populate

if TYPE_CHECKING:
    from mmcore.mm import MM

HUGE_MODES = ("none", "thp", "1g")
THP_ENABLED = ("always", "madvise", "never")  # /sys/kernel/mm/transparent_hugepage/enabled
THP_DEFRAG = ("always", "defer", "defer+madvise", "madvise", "never")  # .../defrag
VA_BASE = 1 << 32


@dataclass
class Vma:
    start: int
    end: int
    huge: str = "thp"  # one of HUGE_MODES
    hint: int = 0  # free-form placement hint passed to the placement hook
    madvised: bool = False  # madvise(MADV_HUGEPAGE)


class Process(AnonFaults):
    def __init__(self, mm: MM, pid: int, home_node: int, pt: PageTable, tlb: Tlb) -> None:
        self.mm, self.pid, self.owner_id, self.home_node = mm, pid, pid, home_node
        self.pt, self.tlb = pt, tlb
        self.radix = isinstance(pt, RadixPageTable)  # offers entry() and map_pte()
        self.placement = mm.hooks.points["placement"]
        self.hugepage = mm.hooks.points["hugepage"]
        self.vmas: list[Vma] = []  # by start
        self.starts: list[int] = []  # their starts, for bisect
        self.last_vma: Vma | None = None  # the VMA find_vma found last
        self.next_va = VA_BASE
        self.pmd_count: dict[int, int] = {}  # va >> 21 -> 4 KiB slots in use
        self.huge2m: set[int] = set()  # va >> 21 with a 2 MiB slot
        self.huge1g: set[int] = set()  # va >> 30 with a 1 GiB slot
        self.present = [0, 0, 0]  # mapped pages per size (4K, 2M, 1G)
        self.swapped = 0  # pages (4 KiB units) in swap
        self.alive = True
        self.oom_score_adj = 0  # in [OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX]
        self.oom_victim = False  # chosen by the OOM killer while faulting

    # --- address space ---------------------------------------------------
    @property
    def rss_pages(self) -> int:
        return self.present[0] + (self.present[1] << 9) + (self.present[2] << 18)

    def mmap(self, length: int, huge: str = "thp", hint: int = 0,
             madvised: bool = False) -> int:
        if huge not in HUGE_MODES:
            raise ValueError(f"huge must be one of {HUGE_MODES}")
        align = 1 << (30 if huge == "1g" else 21)
        start = (self.next_va + align - 1) & -align
        end = start + ((length + 4095) & -4096)
        self.insert_vma(Vma(start, end, huge, hint, madvised))
        self.next_va = end + align  # leave a guard gap
        return start

    def insert_vma(self, vma: Vma) -> None:
        """Add a VMA at its place in the address order."""
        i = bisect_right(self.starts, vma.start)
        self.vmas.insert(i, vma)
        self.starts.insert(i, vma.start)

    def find_vma(self, va: int) -> Vma | None:
        v = self.last_vma
        if v is not None and v.start <= va < v.end:
            return v
        i = bisect_right(self.starts, va) - 1
        if i >= 0:
            v = self.vmas[i]
            if va < v.end:
                self.last_vma = v
                return v
        return None

    def _drop(self, base: int, order: int) -> None:
        """Unmap the page of ``order`` at ``base``, freeing its frame or swap."""
        mm = self.mm
        loc = self.pt.get_pte(base)
        if loc is None:
            return
        e = mm.mem.read(loc)
        if e & PTE_PRESENT:
            self.tlb.invalidate(base, order)
            mm.free(pte_pfn(e))
            self.present[SIZE_ORDERS.index(order)] -= 1
        elif e & PTE_SWAP:
            self.swapped -= 1 << order
            mm.stats.swap_used -= 1 << order
        self.pt.unmap_page(base)
        self._account(base, order, -1)

    # --- unmap and exit --------------------------------------------------
    def munmap(self, start: int, length: int) -> None:
        """Unmap [start, start + length); a THP partly inside is split.  If
        the OOM killer chose this process meanwhile (a page-table page for
        a split), it exits now."""
        self._unmap_range(start, length)
        mm = self.mm
        if self.oom_victim and self.alive and mm.current is not self:
            mm.oom.pages_freed += self.rss_pages + self.pt.table_pages()
            mm.exit(self)

    def _unmap_range(self, start: int, length: int) -> None:
        end = start + length
        for g in sorted(i for i in self.huge1g if start < (i + 1) << 30 and i << 30 < end):
            self._drop(g << 30, ORDER_1G)
        for h in sorted(i for i in self.huge2m if start < (i + 1) << 21 and i << 21 < end):
            if start <= h << 21 and (h + 1) << 21 <= end:
                self._drop(h << 21, ORDER_2M)
            elif not self._split_huge_pmd(h << 21):
                self._drop(h << 21, ORDER_2M)
        for k in sorted(i for i in self.pmd_count if start < (i + 1) << 21 and i << 21 < end):
            lo, hi = max(start, k << 21), min(end, (k + 1) << 21)
            if self.radix:  # only the slots in use: one read of the PTE table
                first, stop = (lo >> PAGE_SHIFT) & 511, ((hi - 1) >> PAGE_SHIFT & 511) + 1
                for i in self.pt.pte_slots(lo):
                    if first <= i < stop:
                        self._drop((k << 21) | (i << PAGE_SHIFT), ORDER_4K)
                continue
            for va in range(lo & -4096, hi, 4096):
                if self.pt.get_pte(va) is not None:
                    self._drop(va, ORDER_4K)
        kept: list[Vma] = []
        for v in self.vmas:
            if v.end <= start or v.start >= end:
                kept.append(v)
                continue
            if v.start < start:
                kept.append(Vma(v.start, start, v.huge, v.hint, v.madvised))
            if v.end > end:
                kept.append(Vma(end, v.end, v.huge, v.hint, v.madvised))
        self.vmas = sorted(kept, key=lambda v: v.start)
        self.starts = [v.start for v in self.vmas]
        self.last_vma = None

    def _split_huge_pmd(self, base: int) -> bool:
        """``split_huge_pmd`` + ``split_huge_page`` for a partial munmap:
        the THP at ``base`` becomes 512 mapped 4 KiB pages (the caller then
        unmaps some).  False (nothing changed) when it is swapped out; when
        no page table page can be had, the whole THP is unmapped."""
        mm = self.mm
        loc = self.pt.get_pte(base)
        e = mm.mem.read(loc) if loc is not None else 0
        if not e & PTE_PRESENT:
            return False
        pfn, young = pte_pfn(e), e & PTE_ACCESSED
        fr = mm.frames
        if fr.lru[pfn]:
            mm.lru.remove(pfn)
        self.pt.unmap_page(base)
        self.tlb.invalidate(base, ORDER_2M)
        vpn = base >> PAGE_SHIFT
        prev, mm.current = mm.current, self  # an OOM kill now waits for the split
        try:
            for i in range(1 << ORDER_2M):
                loc = self.pt.map_page(base + (i << PAGE_SHIFT), ORDER_4K)
                mm.mem.write(loc, make_pte(pfn + i, ORDER_4K) | young)
        except PageTableError:  # no page for the table: the whole THP goes, as before
            for j in range(i):
                self.pt.unmap_page(base + (j << PAGE_SHIFT))
            mm.free(pfn)
            self.present[1] -= 1
            self.huge2m.discard(base >> 21)
            mm.stats.thp_split_failures += 1
            return True
        finally:
            mm.current = prev
        lid = lid_of(mm.phys.zone_of(pfn).nid, LruList.INACTIVE_ANON)
        for i in range(1 << ORDER_2M):
            mm.pa.prep(pfn + i, ORDER_4K, MT.MOVABLE, self.owner_id, vpn + i)
            mm.lru.add(pfn + i, lid)
        self.huge2m.discard(base >> 21)
        self.pmd_count[base >> 21] = 1 << ORDER_2M
        self.present[1] -= 1
        self.present[0] += 1 << ORDER_2M
        mm.stats.thp_splits += 1
        return True

    def exit(self) -> None:
        for v in list(self.vmas):
            self._unmap_range(v.start, v.end - v.start)
        self.tlb.flush()
        self.alive = False

    # --- translation -----------------------------------------------------
    def access(self, va: int) -> int:
        """A memory reference: TLB, else a walk (faulting if needed)."""
        pfn = self.tlb.lookup(va)
        if pfn >= 0:
            return pfn
        return self.miss(va, self.walk(va))

    def populate(self, va: int, n: int) -> int:
        """:meth:`access` the ``n`` 4 KiB pages from ``va`` in turn, until
        the process exits (OOM-killed in a fault); how many got a page
        (:func:`mmcore.virt.populate.populate`: the same state as those
        accesses, in one call)."""
        return populate(self, va, n)

    def walk(self, va: int) -> PteLoc | None:
        """The hardware walk after a TLB miss at ``va``, counted in the stats."""
        pt, st = self.pt, self.mm.stats
        before = pt.walk_refs
        loc = pt.get_pte(va, walk=True)
        st.walks += 1
        st.walk_refs += pt.walk_refs - before
        return loc

    def miss(self, va: int, loc: PteLoc | None) -> int:
        """:meth:`access` after a TLB miss and the walk that gave ``loc``."""
        mm = self.mm
        if loc is None:  # the fault takes the walk's result (the table goes on from there)
            vma = self.find_vma(va)
            if vma is not None and vma.huge == "none":
                # a radix table's fault looks the PTE table up again from
                # where the walk left it (one read) for its pcp fast path
                pfn = self.fault(va) if self.radix else self._fault_none_4k(va, vma)
                if pfn >= 0:
                    self.tlb.fill(va, ORDER_4K, pfn)
                return pfn
            if vma is not None and vma.huge == "thp" and self.radix:  # its fast path too
                pfn = self.fault(va)
                if pfn < 0:
                    return -1
                e = self.pt.entry(va)
            else:
                pfn, e = self._fault(va, vma, 0)
                if pfn < 0:
                    return -1
        else:
            e = mm.mem.read(loc)
            if not e & PTE_PRESENT:
                pfn, e = self._fault(va, self.find_vma(va), e)
                if pfn < 0:
                    return -1
            elif not e & PTE_ACCESSED:  # a new PTE has the bit already
                mm.mem.write(loc, e | PTE_ACCESSED)
        order = pte_order(e)
        self.tlb.fill(va, order, pte_pfn(e))
        return pte_pfn(e) + ((va >> PAGE_SHIFT) & ((1 << order) - 1))

    # --- rmap callbacks ----------------------------------------------------
    def _loc(self, pfn: int, index: int) -> tuple[tuple[int, int], int]:
        loc = self.pt.get_pte(index << PAGE_SHIFT)
        if loc is None:
            raise PageTableError(f"pid {self.pid}: no PTE for vpn {index:#x} (pfn {pfn:#x})")
        return loc, self.mm.mem.read(loc)

    def remap(self, old: int, new: int, index: int, order: int) -> None:
        loc, e = self._loc(old, index)
        self.mm.mem.write(loc, make_pte(new, order) | (e & PTE_ACCESSED))
        self.tlb.invalidate(index << PAGE_SHIFT, order)

    def evict(self, pfn: int, index: int, order: int, loc: PteLoc | None = None) -> None:
        """Unmap the page to swap; ``loc``: its PTE's place when the caller
        has it already (:meth:`unreferenced`), else it is looked up."""
        if loc is None:
            loc, _ = self._loc(pfn, index)
        if self.radix:  # TableMemory.write of a table with no kept bits
            U64.pack_into(self.pt.bufs[loc[0]], loc[1], make_swap_pte(order))
        else:
            self.mm.mem.write(loc, make_swap_pte(order))
        self.tlb.invalidate(index << PAGE_SHIFT, order)
        self.present[SIZE_ORDERS.index(order)] -= 1
        self.swapped += 1 << order
        self.mm.stats.swapouts += 1 << order
        self.mm.stats.swap_used += 1 << order

    def referenced(self, pfn: int, index: int) -> bool:
        """Test and clear the page's accessed bit (``folio_referenced``)."""
        return self.unreferenced(pfn, index) is None

    def unreferenced(self, pfn: int, index: int) -> PteLoc | None:
        """:meth:`referenced` for reclaim's scan: None when the page was
        referenced (its accessed bit is now clear), else its PTE's place,
        which stays valid for :meth:`evict` while no page table is freed.
        A radix table's entry is read and cleared in place in the table page
        its lookup stopped at (``RadixPageTable.entry``)."""
        if self.radix:
            va = index << PAGE_SHIFT
            pt = self.pt
            if va >> 21 == pt.leaf_key and pt.leaf_frees == pt.frees:
                # the PTE table looked up last (entry's first case, inline)
                t, off = pt.leaf_t, ((va >> PAGE_SHIFT) & 511) << 3
                e = U64.unpack_from(pt.bufs[t], off)[0]
            else:
                e = pt.entry(va)
                t, off = pt.stop_t, ((va >> SHIFTS[pt.stop_lvl]) & 511) << 3
            if not e:
                raise PageTableError(f"pid {self.pid}: no PTE for vpn {index:#x} (pfn {pfn:#x})")
            if e & PTE_ACCESSED:
                U64.pack_into(pt.bufs[t], off, e & ~PTE_ACCESSED)
                self.tlb.invalidate(va, pte_order(e))
                return None
            return t, off
        loc, e = self._loc(pfn, index)
        if e & PTE_ACCESSED:
            self.mm.mem.write(loc, e & ~PTE_ACCESSED)
            self.tlb.invalidate(index << PAGE_SHIFT, pte_order(e))
            return None
        return loc
