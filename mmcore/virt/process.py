"""Processes: VMAs, anonymous faults (4 KiB, 2 MiB THP, 1 GiB), munmap, exit,
the translation path (TLB, walk, accessed bits) and the rmap callbacks that
migration and reclaim use.  Every PTE access goes through the page table's
``map_page`` / ``unmap_page`` / ``get_pte`` (on the built-in radix table a
fault uses its ``entry`` and ``map_pte``, the same walks without building a
PTE place).  A fault walks the table once: ``map_page`` goes on from where
the fault's lookup stopped.  :meth:`Process.populate` faults a run of pages
in one call (:mod:`mmcore.virt.populate`).

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
    ALLOC_DEFAULT,
    MT,
    ORDER_1G,
    ORDER_2M,
    ORDER_4K,
    PAGE_SHIFT,
    AllocFlag,
)
from mmcore.errors import PageTableError
from mmcore.pagetables.pte import (
    PTE_ACCESSED,
    PTE_PFN_SHIFT,
    PTE_PRESENT,
    PTE_SWAP,
    PageTable,
    PteLoc,
    make_pte,
    make_swap_pte,
    pte_order,
    pte_pfn,
)
from mmcore.pagetables.radix import RadixPageTable
from mmcore.pagetables.tlb import Tlb
from mmcore.virt.lru import LruList, lid_of
from mmcore.virt.populate import ANON_MT, INACTIVE_ANON, PTE_4K_NEW, populate

if TYPE_CHECKING:
    from mmcore.mm import MM

HUGE_MODES = ("none", "thp", "1g")
SIZE_ORDERS = (ORDER_4K, ORDER_2M, ORDER_1G)  # hook return value -> order
THP_ENABLED = ("always", "madvise", "never")  # /sys/kernel/mm/transparent_hugepage/enabled
THP_DEFRAG = ("always", "defer", "defer+madvise", "madvise", "never")  # .../defrag
_DIRECT = AllocFlag.RECLAIM | AllocFlag.COMPACT


def thp_fault_flags(defrag: str, madvised: bool) -> int:
    """``vma_thp_gfp_mask``: what a THP fault may do to get its page —
    direct reclaim and compaction (GFP_TRANSHUGE), only wake kswapd and
    kcompactd (GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM), or neither."""
    if defrag == "always":
        return _DIRECT
    if defrag == "defer":
        return AllocFlag.KSWAPD
    if defrag == "defer+madvise":
        return _DIRECT if madvised else AllocFlag.KSWAPD
    if defrag == "madvise":
        return _DIRECT if madvised else 0
    return 0
VA_BASE = 1 << 32


@dataclass
class Vma:
    start: int
    end: int
    huge: str = "thp"  # one of HUGE_MODES
    hint: int = 0  # free-form placement hint passed to the placement hook
    madvised: bool = False  # madvise(MADV_HUGEPAGE)


class Process:
    def __init__(self, mm: MM, pid: int, home_node: int, pt: PageTable, tlb: Tlb) -> None:
        self.mm, self.pid, self.owner_id, self.home_node = mm, pid, pid, home_node
        self.pt, self.tlb = pt, tlb
        self.radix = isinstance(pt, RadixPageTable)  # offers entry() and map_pte()
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

    # --- faults ----------------------------------------------------------
    def _allowed(self, vma: Vma, va: int) -> int:
        """Bit mask of page sizes a fault at ``va`` may use (bit i: SIZE_ORDERS[i]):
        2 MiB when THP is enabled for the VMA, 1 GiB in a ``1g`` VMA."""
        mask = 1
        if vma.huge == "none":
            return mask
        b2 = va & -(1 << 21)
        if vma.start <= b2 and b2 + (1 << 21) <= vma.end and not self.pmd_count.get(va >> 21):
            if self.mm.thp_allowed(vma):
                mask |= 2
            b1 = va & -(1 << 30)
            if (
                vma.huge == "1g"
                and vma.start <= b1
                and b1 + (1 << 30) <= vma.end
                and not any(
                    i in self.pmd_count or i in self.huge2m
                    for i in range(b1 >> 21, (b1 >> 21) + 512)
                )
            ):
                mask |= 4
        return mask

    def fault(self, va: int) -> int:
        """Handle a fault at ``va``; return the pfn mapped there or -1.

        The process is ``MM.current`` meanwhile; if the OOM killer chose it
        during the fault, it exits when the fault returns (-1)."""
        vma = self.last_vma
        if vma is None or not vma.start <= va < vma.end:
            vma = self.find_vma(va)
            if vma is None:
                return self._fault(va, None, 0)[0]
        if self.radix:
            e = self.pt.entry(va)
        else:
            loc = self.pt.get_pte(va)
            e = self.mm.mem.read(loc) if loc is not None else 0
        if e & PTE_PRESENT:  # nothing to do (no fault is counted)
            return pte_pfn(e) + ((va >> PAGE_SHIFT) & ((1 << pte_order(e)) - 1))
        if not e and vma.huge == "none":
            return self._fault_none_4k(va, vma)
        return self._fault(va, vma, e)[0]

    def _fault(self, va: int, vma: Vma | None, e: int) -> tuple[int, int]:
        """:meth:`fault` given the VMA and the entry ``e`` the page table
        holds for ``va`` (0 when none), so a caller that has just walked the
        table does not walk it again; returns the pfn mapped at ``va`` or -1,
        and the PTE's value afterwards (0 when the fault failed; a new PTE
        has PTE_ACCESSED)."""
        mm = self.mm
        prev, mm.current = mm.current, self
        out = self._handle(va, vma, e)
        mm.current = prev
        if self.oom_victim:
            mm.oom.pages_freed += self.rss_pages + self.pt.table_pages()
            mm.exit(self)
            return -1, 0
        return out

    def _fault_none_4k(self, va: int, vma: Vma) -> int:
        """:meth:`_fault` where nothing is mapped at ``va`` and its VMA takes
        only 4 KiB pages: the pfn mapped, or -1."""
        mm = self.mm
        prev, mm.current = mm.current, self
        mm.stats.faults += 1
        pfn = self._fault_4k(va, vma)
        mm.current = prev
        if self.oom_victim:
            mm.oom.pages_freed += self.rss_pages + self.pt.table_pages()
            mm.exit(self)
            return -1
        return pfn

    def _handle(self, va: int, vma: Vma | None, e: int) -> tuple[int, int]:
        mm = self.mm
        st = mm.stats
        if vma is None:
            st.segv += 1
            return -1, 0
        if e:
            order = pte_order(e)
            if e & PTE_PRESENT:
                return pte_pfn(e) + ((va >> PAGE_SHIFT) & ((1 << order) - 1)), e
            if e & PTE_SWAP:
                st.swapins += 1 << order
                st.major_faults += 1
                self._drop(va & -(1 << (PAGE_SHIFT + order)), order)
        st.faults += 1
        allowed = self._allowed(vma, va)
        if allowed == 1:  # 4 KiB only: the hugepage hook is not asked
            pfn = self._fault_4k(va, vma)
            return (pfn, (pfn << PTE_PFN_SHIFT) | PTE_4K_NEW) if pfn >= 0 else (-1, 0)
        choice = mm.hook_hugepage(self, vma, va, allowed)
        for size in range(choice, -1, -1):
            if not allowed >> size & 1:
                continue
            order = SIZE_ORDERS[size]
            base = va & -(1 << (PAGE_SHIFT + order))
            if order:
                st.huge_attempts[size] += 1
            flags = ALLOC_DEFAULT if not order else thp_fault_flags(
                mm.config.thp_defrag, vma.madvised)
            nid = mm.hook_placement(self, vma, order)
            if order == ORDER_1G:  # hugetlbfs: from the pool, never the buddy at fault
                pfn = mm.hugetlb.alloc_page(nid, self.owner_id, base >> PAGE_SHIFT)
            else:
                pfn = mm.pa.alloc(order, ANON_MT, self.owner_id, base >> PAGE_SHIFT, nid, flags)
            if pfn >= 0:
                if order:
                    st.huge_success[size] += 1
                break
        else:
            st.oom += 1
            return -1, 0
        e = make_pte(pfn, order) | PTE_ACCESSED
        try:
            if self.radix:
                self.pt.map_pte(base, order, e)
            else:
                mm.mem.write(self.pt.map_page(base, order), e)
        except PageTableError:
            mm.free(pfn)
            st.pt_failures += 1
            return -1, 0
        self._account(base, order, +1)
        self.present[size] += 1
        if order < ORDER_1G:
            mm.lru.add_new(pfn, INACTIVE_ANON)
            if mm.config.pin_rate:
                mm.maybe_pin(pfn)
        return pfn + ((va >> PAGE_SHIFT) & ((1 << order) - 1)), e

    def _fault_4k(self, va: int, vma: Vma) -> int:
        """The 4 KiB anonymous fault at ``va`` (counted, nothing mapped there,
        ``MM.current`` set): the placement hook, an order-0 page, its PTE
        (the page table goes on from where the fault's lookup stopped), its
        LRU list; the pfn, or -1 (no memory: counted as OOM; no table page)."""
        mm = self.mm
        nid = mm.hook_placement(self, vma, ORDER_4K)
        base = va & -4096
        pfn = mm.pa.alloc(0, ANON_MT, self.owner_id, base >> PAGE_SHIFT, nid, ALLOC_DEFAULT)
        if pfn < 0:
            mm.stats.oom += 1
            return -1
        pte = (pfn << PTE_PFN_SHIFT) | PTE_4K_NEW
        try:
            if self.radix:
                self.pt.map_pte(base, ORDER_4K, pte)
            else:
                mm.mem.write(self.pt.map_page(base, ORDER_4K), pte)
        except PageTableError:
            mm.free(pfn)
            mm.stats.pt_failures += 1
            return -1
        k = base >> 21
        pmd = self.pmd_count
        pmd[k] = pmd.get(k, 0) + 1
        self.present[0] += 1
        mm.lru.add_new(pfn, INACTIVE_ANON)
        if mm.config.pin_rate:
            mm.maybe_pin(pfn)
        return pfn

    def _account(self, base: int, order: int, delta: int) -> None:
        if order == ORDER_4K:
            k = base >> 21
            n = self.pmd_count.get(k, 0) + delta
            if n:
                self.pmd_count[k] = n
            else:
                self.pmd_count.pop(k, None)
        elif order == ORDER_2M:
            (self.huge2m.add if delta > 0 else self.huge2m.discard)(base >> 21)
        else:
            (self.huge1g.add if delta > 0 else self.huge1g.discard)(base >> 30)

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
                pfn = self._fault_none_4k(va, vma)
                if pfn >= 0:
                    self.tlb.fill(va, ORDER_4K, pfn)
                return pfn
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

    def evict(self, pfn: int, index: int, order: int) -> None:
        loc, _ = self._loc(pfn, index)
        self.mm.mem.write(loc, make_swap_pte(order))
        self.tlb.invalidate(index << PAGE_SHIFT, order)
        self.present[SIZE_ORDERS.index(order)] -= 1
        self.swapped += 1 << order
        self.mm.stats.swapouts += 1 << order
        self.mm.stats.swap_used += 1 << order

    def referenced(self, pfn: int, index: int) -> bool:
        loc, e = self._loc(pfn, index)
        if e & PTE_ACCESSED:
            self.mm.mem.write(loc, e & ~PTE_ACCESSED)
            self.tlb.invalidate(index << PAGE_SHIFT, pte_order(e))
            return True
        return False
