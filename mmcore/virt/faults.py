"""Anonymous faults of a process: 4 KiB, 2 MiB THP and 1 GiB pages, the
hugepage and placement hooks, the allocation and the PTE.

:class:`AnonFaults` holds the fault path of :class:`~mmcore.virt.process.Process`.
:meth:`AnonFaults.fault` looks the page table up once.  Two common cases
take the general path's steps written out, leaving the state it leaves:
a 4 KiB fault under the PTE table looked up last whose page comes from a
pcp list (in :meth:`AnonFaults.fault`: the placement hook, the page, the
PTE written into the slot read, the LRU add), and a 2 MiB fault with no
hugepage or placement program (:meth:`AnonFaults._fault_thp`).
Every other fault takes the general path (:meth:`AnonFaults._handle`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import (
    ALLOC_DEFAULT,
    GFP_ZONE,
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
    U64,
    make_pte,
    pte_order,
    pte_pfn,
)
from mmcore.phys.buddy import ALLOC
from mmcore.virt.populate import ANON_MT, INACTIVE_ANON, PTE_4K_NEW

if TYPE_CHECKING:
    from mmcore.hooks.dispatch import HookPoint
    from mmcore.mm import MM
    from mmcore.pagetables.pte import PageTable
    from mmcore.virt.process import Vma

SIZE_ORDERS = (ORDER_4K, ORDER_2M, ORDER_1G)  # hook return value -> order
PTE_2M_NEW = make_pte(0, ORDER_2M) | PTE_ACCESSED
ANON_CZ = GFP_ZONE[ANON_MT]  # the classzone of an anonymous allocation
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

class AnonFaults:
    """The fault path of a process (a mixin of :class:`~mmcore.virt.process.Process`,
    which sets these attributes)."""

    mm: MM
    pt: PageTable
    radix: bool  # pt is a RadixPageTable (entry() and map_pte())
    placement: HookPoint  # the MM's placement and hugepage hook points
    hugepage: HookPoint
    owner_id: int
    home_node: int
    last_vma: Vma | None
    pmd_count: dict[int, int]
    huge2m: set[int]
    huge1g: set[int]
    present: list[int]
    oom_victim: bool

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
        if not self.radix:
            loc = self.pt.get_pte(va)
            e = self.mm.mem.read(loc) if loc is not None else 0
            if e & PTE_PRESENT:
                return pte_pfn(e) + ((va >> PAGE_SHIFT) & ((1 << pte_order(e)) - 1))
            if not e and vma.huge == "none":
                return self._fault_none_4k(va, vma)
            return self._fault(va, vma, e)[0]
        pt = self.pt
        if va >> 21 == pt.leaf_key and pt.leaf_frees == pt.frees and vma.huge == "none":
            # _fault_none_4k when the lookup's PTE table is the one looked up
            # last (RadixPageTable.entry's first case, read in place) and its
            # slot is empty; when the first zone above its watermark has a
            # page on its pcp list: PageAllocator.alloc's fast path and the
            # PTE written into that slot
            t = pt.leaf_t
            buf, off = pt.bufs[t], ((va >> PAGE_SHIFT) & 511) << 3
            if not U64.unpack_from(buf, off)[0]:
                mm = self.mm
                prev, mm.current = mm.current, self
                mm.stats.faults += 1
                nid = (self.home_node if self.placement.engine is None
                       else mm.hook_placement(self, vma, ORDER_4K))
                for z in mm.pa.zonelists[nid][ANON_MT]:
                    if z.free_pages > z.low_for[ANON_MT]:
                        pcp = z.pcp[ANON_MT]
                        if not pcp or pt.leaf_frees != pt.frees:
                            pfn = self._fault_4k(va, vma, nid)
                            break
                        pfn = pcp.pop()
                        fr = mm.frames
                        fr.state[pfn] = ALLOC
                        fr.mt[pfn] = ANON_MT
                        fr.owner[pfn] = self.owner_id
                        if va >> 44 or fr.index_hi[pfn]:  # Frames.set_index
                            fr.set_index(pfn, va >> PAGE_SHIFT)
                        else:
                            fr.index_lo[pfn] = va >> PAGE_SHIFT
                        U64.pack_into(buf, off, (pfn << PTE_PFN_SHIFT) | PTE_4K_NEW)
                        pt.used[t] += 1
                        k = va >> 21
                        pmd = self.pmd_count
                        pmd[k] = pmd.get(k, 0) + 1
                        self.present[0] += 1
                        mm.lru.add_new(pfn, INACTIVE_ANON)
                        if mm.config.pin_rate:
                            mm.maybe_pin(pfn)
                        break
                else:
                    pfn = self._fault_4k(va, vma, nid)
                mm.current = prev
                if self.oom_victim:
                    mm.oom.pages_freed += self.rss_pages + pt.table_pages()
                    mm.exit(self)
                    return -1
                return pfn
        if va >> 30 == pt.pmd_key and pt.pmd_frees == pt.frees and vma.huge == "thp":
            # the PMD table of the 1 GiB region looked up last: its slot for
            # va read in place (RadixPageTable.entry's second case); empty,
            # the 2 MiB page goes there
            t = pt.pmd_t
            buf, off = pt.bufs[t], ((va >> 21) & 511) << 3
            if not U64.unpack_from(buf, off)[0]:
                return self._fault_thp(va, vma, buf, off, t)
        e = pt.entry(va)
        if e & PTE_PRESENT:  # nothing to do (no fault is counted)
            return pte_pfn(e) + ((va >> PAGE_SHIFT) & ((1 << pte_order(e)) - 1))
        if e:
            return self._fault(va, vma, e)[0]
        huge = vma.huge
        if huge == "thp":
            return self._fault_thp(va, vma)
        if huge == "none":
            return self._fault_none_4k(va, vma)
        return self._fault(va, vma, 0)[0]

    def _fault_thp(self, va: int, vma: Vma, buf: bytearray | None = None, off: int = 0,
                   t: int = -1) -> int:
        """:meth:`_fault` where nothing is mapped at ``va`` in a ``thp`` VMA of
        a radix table: when a 2 MiB page may be had there and no hugepage
        or placement program is attached, :meth:`_allowed`, the hooks'
        built-in answers and the 2 MiB attempt of :meth:`_place` written out
        (a failed attempt goes on with its 4 KiB one).  ``buf``, ``off``:
        the empty PMD slot of ``va`` in table ``t``, when the caller read it
        in place (the PMD entry is then written there)."""
        mm = self.mm
        b2 = va & -(1 << 21)
        enabled = mm.config.thp_enabled  # MM.thp_allowed
        if not (vma.start <= b2 and b2 + (1 << 21) <= vma.end
                and not self.pmd_count.get(va >> 21)
                and (enabled == "always" or enabled == "madvise" and vma.madvised)
                and self.hugepage.engine is None and self.placement.engine is None):
            return self._fault(va, vma, 0)[0]
        prev, mm.current = mm.current, self
        st = mm.stats
        st.faults += 1
        self.hugepage.words[0] += 1  # HookPoint.calls
        st.huge_attempts[1] += 1
        pa = mm.pa
        take = pa.native_take
        pfn = -1
        if take is not None and not b2 >> 44:
            # PageAllocator.alloc of a block from the first zone that passes
            # its watermark test (a take that finds no block changes nothing:
            # alloc, from the start, goes on to the fallback)
            for z in pa.zonelists[self.home_node][ANON_MT]:
                if z.free_pages - 511 <= z.wmark_low + z.lowmem_reserve[ANON_CZ]:
                    continue
                pfn = take(z.desc, ORDER_2M, ANON_MT, self.owner_id, b2 >> PAGE_SHIFT)
                if pfn >= 0:
                    z.free_pages -= 512
                break
        if pfn < 0:
            pfn = pa.alloc(ORDER_2M, ANON_MT, self.owner_id, b2 >> PAGE_SHIFT, self.home_node,
                           thp_fault_flags(mm.config.thp_defrag, vma.madvised))
        if pfn < 0:
            out = self._place(va, vma, 0, 3)[0]
        else:
            st.huge_success[1] += 1
            out = pfn + ((va >> PAGE_SHIFT) & 511)
            if buf is not None:
                U64.pack_into(buf, off, (pfn << PTE_PFN_SHIFT) | PTE_2M_NEW)
                self.pt.used[t] += 1
            else:
                try:
                    self.pt.map_pte(b2, ORDER_2M, (pfn << PTE_PFN_SHIFT) | PTE_2M_NEW)
                except PageTableError:
                    mm.free(pfn)
                    st.pt_failures += 1
                    out = -1
            if out >= 0:
                self.huge2m.add(b2 >> 21)
                self.present[1] += 1
                mm.lru.add_new(pfn, INACTIVE_ANON)  # one entry of 512 pages
                if mm.config.pin_rate:
                    mm.maybe_pin(pfn)
        mm.current = prev
        if self.oom_victim:
            mm.oom.pages_freed += self.rss_pages + self.pt.table_pages()
            mm.exit(self)
            return -1
        return out

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
        return self._place(va, vma, mm.hook_hugepage(self, vma, va, allowed), allowed)

    def _place(self, va: int, vma: Vma, choice: int, allowed: int) -> tuple[int, int]:
        """The rest of :meth:`_handle` once the hugepage hook chose: a page
        of the largest allowed size from ``choice`` down that can be had, its
        PTE, its LRU list; as :meth:`_fault` returns."""
        mm = self.mm
        st = mm.stats
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

    def _fault_4k(self, va: int, vma: Vma, nid: int = -1) -> int:
        """The 4 KiB anonymous fault at ``va`` (counted, nothing mapped there,
        ``MM.current`` set): the placement hook (unless its answer ``nid`` is
        given), an order-0 page, its PTE (the page table goes on from where
        the fault's lookup stopped), its LRU list; the pfn, or -1 (no memory:
        counted as OOM; no table page)."""
        mm = self.mm
        if nid < 0:
            nid = mm.hook_placement(self, vma, ORDER_4K)
        base = va & -4096
        for z in mm.pa.zonelists[nid][ANON_MT]:  # PageAllocator.alloc's pcp fast path
            if z.free_pages > z.low_for[ANON_MT]:
                pcp = z.pcp[ANON_MT]
                if pcp:
                    pfn = pcp.pop()
                    fr = mm.frames
                    fr.state[pfn] = ALLOC
                    fr.mt[pfn] = ANON_MT
                    fr.owner[pfn] = self.owner_id
                    if base >> 44 or fr.index_hi[pfn]:  # Frames.set_index
                        fr.set_index(pfn, base >> PAGE_SHIFT)
                    else:
                        fr.index_lo[pfn] = base >> PAGE_SHIFT
                    break
                pfn = -1  # a refill: the allocator's own path, from the first zone again
                break
        else:
            pfn = -1
        if pfn < 0:
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

