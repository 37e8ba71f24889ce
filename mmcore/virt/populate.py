"""Populating a run of 4 KiB pages in one call: what ``Process.access`` on
each page in turn does (TLB miss, hardware walk, fault, TLB fill), with the
common case's per-page work written out in one loop.

The common case is a TLB miss at a page of a 4 KiB-only VMA of a radix
page table, a walk that finds no PTE, and an order-0 page from the pcp list
of the first zone above its low watermark.  Every other page (a TLB hit, a
PTE already there, a THP or 1 GiB VMA, no VMA, an empty pcp list, a zone
below its watermark, another page-table kind) takes the general path of
that step, so the state left (frame arrays, free and pcp lists, LRU order,
PTEs, TLB and walk-cache contents, every counter) is the one the accesses
leave.  An attached placement program is called once per fault, in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import ALLOC_DEFAULT, MT
from mmcore.errors import PageTableError
from mmcore.pagetables.pte import PTE_ACCESSED, PTE_LEAF, PTE_PFN_SHIFT, PTE_PRESENT
from mmcore.phys.buddy import ALLOC
from mmcore.virt.lru import LruList

if TYPE_CHECKING:
    from mmcore.virt.process import Process

ANON_MT = int(MT.MOVABLE)  # anonymous pages' migratetype (SOURCES[Source.ANON].mt)
PTE_4K_NEW = PTE_PRESENT | PTE_LEAF | PTE_ACCESSED  # make_pte(0, ORDER_4K) | PTE_ACCESSED
INACTIVE_ANON = int(LruList.INACTIVE_ANON)


def populate(proc: Process, va: int, n: int) -> int:
    """``proc.access`` on the ``n`` pages from ``va`` until ``proc`` exits;
    the number of accesses that got a page."""
    done = 0
    if not proc.radix:
        for i in range(n):
            pfn = proc.access(va + (i << 12))
            if not proc.alive:
                break
            done += pfn >= 0
        return done
    mm, pt, tlb = proc.mm, proc.pt, proc.tlb
    st, pa, lru = mm.stats, mm.pa, mm.lru
    c4k, c2m, c1g, cap = tlb.c4k, tlb.c2m, tlb.c1g, tlb.cap4k
    fst, ffmt, fowner, findex, fhi = pa.st, pa.fmt, pa.owner, pa.index_lo, pa.index_hi
    zonelists, oid, pmd, present = pa.zonelists, proc.owner_id, proc.pmd_count, proc.present
    placed = mm.hooks.attached("placement")
    pin = mm.config.pin_rate
    map_pte, add_lru = pt.map_pte, lru.add_new
    for i in range(n):
        a = va + (i << 12)
        vma = proc.last_vma
        if vma is None or not vma.start <= a < vma.end:
            vma = proc.find_vma(a)
        if (vma is None or vma.huge != "none" or a >> 12 in c4k or a >> 21 in c2m
                or a >> 30 in c1g):
            pfn = proc.access(a)
        else:
            tlb.misses += 1
            loc = proc.walk(a)
            if loc is not None:
                pfn = proc.miss(a, loc)
            else:  # Process._fault_none_4k, written out
                prev, mm.current = mm.current, proc
                st.faults += 1
                nid = mm.hook_placement(proc, vma, 0) if placed else proc.home_node
                vpn = a >> 12
                for z in zonelists[nid][ANON_MT]:
                    if z.free_pages > z.low_for[ANON_MT]:
                        lst = z.pcp[ANON_MT]
                        if lst:
                            pfn = lst.pop()
                            fst[pfn] = ALLOC
                            ffmt[pfn] = ANON_MT
                            fowner[pfn] = oid
                            if vpn >> 32 or fhi[pfn]:
                                pa.set_index(pfn, vpn)
                            else:
                                findex[pfn] = vpn
                        else:
                            pfn = pa.alloc(0, ANON_MT, oid, vpn, nid, ALLOC_DEFAULT)
                        break
                else:
                    pfn = pa.alloc(0, ANON_MT, oid, vpn, nid, ALLOC_DEFAULT)
                if pfn < 0:
                    st.oom += 1
                else:
                    try:
                        map_pte(a, 0, (pfn << PTE_PFN_SHIFT) | PTE_4K_NEW)
                    except PageTableError:
                        mm.free(pfn)
                        st.pt_failures += 1
                        pfn = -1
                    else:
                        k = a >> 21
                        pmd[k] = pmd.get(k, 0) + 1
                        present[0] += 1
                        add_lru(pfn, INACTIVE_ANON)
                        if pin:
                            mm.maybe_pin(pfn)
                mm.current = prev
                if proc.oom_victim:
                    mm.oom.pages_freed += proc.rss_pages + pt.table_pages()
                    mm.exit(proc)
                    pfn = -1
                elif pfn >= 0:
                    c4k[a >> 12] = pfn
                    if len(c4k) > cap:
                        c4k.popitem(last=False)
        if not proc.alive:
            break
        done += pfn >= 0
    return done
