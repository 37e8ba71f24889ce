"""Invariants of what owns pages: page tables, TLBs and slab caches.

- mappings: each allocated anon frame's PTE (found by ``get_pte``) maps
  exactly it with its order; each file's page index points at frames it
  owns.  The full check reads every frame; the incremental one only the
  frames whose owner, index, order or state changed since the last check;
- TLB coherence: every TLB entry of every process translates to the frame
  its page table maps there (a migration or unmap that left a stale entry
  is caught after the tick it happened in);
- slab: per cache, the objects in use add up over its slabs and match the
  live objects; each slab is on exactly the list its use says (partial,
  full, empty) and its frame is an allocated block of the cache's order,
  owner and handle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import PAGE_SHIFT, FrameState
from mmcore.errors import InvariantError
from mmcore.pagetables.pte import PTE_PFN_MASK, PTE_PFN_SHIFT, PTE_PRESENT, pte_order
from mmcore.sources import KERNEL_OWNER

if TYPE_CHECKING:
    from collections.abc import Callable

    from mmcore.invariants.frames import FrameView
    from mmcore.mm import MM
    from mmcore.pagetables.pte import PteLoc


def _fail(msg: str) -> None:
    raise InvariantError(msg)


def _reader(get_pte: Callable[[int], PteLoc | None],
            read: Callable[[PteLoc], int]) -> Callable[[int], int]:
    """The PTE value at a va (0 where there is none) through ``get_pte``."""
    def value(va: int) -> int:
        loc = get_pte(va)
        return read(loc) if loc is not None else 0
    return value


def check_anon_frames(mm: MM, v: FrameView, pfns: np.ndarray) -> None:
    """The anon frames among ``pfns`` (allocated heads) are mapped by their PTE.

    One page-table lookup per frame (the page tables have no bulk read); the
    frames' owners, indices and orders are read in bulk and grouped by process.
    """
    procs = mm.procs
    owner = v.owner[pfns]
    anon = np.isin(owner, np.fromiter(procs, dtype=np.int64, count=len(procs)))
    sel, owner = pfns[anon], owner[anon]
    by = np.argsort(owner, kind="stable")
    sel, owner = sel[by], owner[by]
    cuts = np.flatnonzero(np.diff(owner)) + 1
    read, mask, shift = mm.mem.read, PTE_PFN_MASK, PTE_PFN_SHIFT
    for group in np.split(np.arange(sel.size), cuts):
        if not group.size:
            continue
        proc = procs[int(owner[group[0]])]
        # a radix table gives the entry itself (read in place); others its place
        value = proc.pt.entry if proc.radix else _reader(proc.pt.get_pte, read)
        g = sel[group]
        for pfn, vpn, order in zip(g.tolist(), v.index[g].tolist(), v.order[g].tolist(),
                                   strict=True):
            e = value(vpn << PAGE_SHIFT)
            if not e & PTE_PRESENT or (e & mask) >> shift != pfn or pte_order(e) != order:
                _fail(f"pid {proc.pid}: va {vpn << PAGE_SHIFT:#x} does not map its frame "
                      f"{pfn:#x}/{order}")


def check_files(mm: MM, v: FrameView) -> None:
    for f in mm.files.values():
        pages = np.frombuffer(f.pages, dtype=np.int32)
        idx = np.nonzero(pages >= 0)[0]
        pfns = pages[idx]
        bad = ((v.st[pfns] != FrameState.ALLOC) | (v.owner[pfns] != f.fid)
               | (v.index[pfns] != idx))
        if bad.any():
            i = int(idx[np.argmax(bad)])
            _fail(f"file {f.fid}: page {i} -> pfn {int(pages[i]):#x} not owned by it")


def check_tlbs(mm: MM, v: FrameView) -> None:
    """Every TLB entry: the frame is an allocated block of the process, of
    the entry's order, for the entry's virtual page."""
    for proc in mm.procs.values():
        for order, cache, _ in proc.tlb.sizes:
            if not cache:
                continue
            keys = np.fromiter(cache.keys(), dtype=np.int64, count=len(cache))
            pfns = np.fromiter(cache.values(), dtype=np.int64, count=len(cache))
            inside = (pfns >= 0) & (pfns < v.n)
            ok = inside.copy()
            p = pfns[inside]
            ok[inside] = ((v.st[p] == FrameState.ALLOC) & (v.owner[p] == proc.owner_id)
                          & (v.order[p] == order) & (v.index[p] == keys[inside] << order))
            if not ok.all():
                i = int(np.argmax(~ok))
                va = int(keys[i]) << (PAGE_SHIFT + order)
                _fail(f"pid {proc.pid}: stale TLB entry va {va:#x} -> pfn {int(pfns[i]):#x} "
                      f"(order {order}): the frame is no longer the page mapped there")


def check_slab(mm: MM, v: FrameView) -> None:
    slab = mm.slab
    per_cache = {c.cid: 0 for c in slab.caches}
    for cache, _ in slab.objects.values():
        per_cache[cache.cid] += 1
    for c in slab.caches:
        name = c.name
        inuse = sum(c.inuse.values())
        if inuse != c.nr_objects or per_cache[c.cid] != c.nr_objects:
            _fail(f"slab {name}: {c.nr_objects} objects counted, its slabs hold {inuse}, "
                  f"{per_cache[c.cid]} live objects are in it")
        if c.reclaimable and len(c.lru) != c.nr_objects:
            _fail(f"slab {name}: {len(c.lru)} objects on its list_lru, {c.nr_objects} in use")
        listed = 0
        for nid in range(len(c.partial)):
            for pfn in c.partial[nid]:
                if not 0 < c.inuse[pfn] < c.objects:
                    _fail(f"slab {name}: partial slab {pfn:#x} has {c.inuse[pfn]} of "
                          f"{c.objects} objects")
            for pfn in c.full[nid]:
                if c.inuse[pfn] != c.objects:
                    _fail(f"slab {name}: full slab {pfn:#x} has {c.inuse[pfn]} of "
                          f"{c.objects} objects")
            for pfn in c.empty[nid]:
                if c.inuse[pfn]:
                    _fail(f"slab {name}: empty slab {pfn:#x} has {c.inuse[pfn]} objects")
            listed += len(c.partial[nid]) + len(c.full[nid]) + len(c.empty[nid])
        if listed != len(c.inuse):
            _fail(f"slab {name}: {len(c.inuse)} slabs, {listed} on its lists")
        if not c.inuse:
            continue
        pfns = np.fromiter(c.inuse, dtype=np.int64, count=len(c.inuse))
        ok = ((v.st[pfns] == FrameState.ALLOC) & (v.order[pfns] == c.order)
              & (v.owner[pfns] == KERNEL_OWNER[c.source]) & (v.index[pfns] == c.handle))
        if not ok.all():
            _fail(f"slab {name}: slab page {int(pfns[np.argmax(~ok)]):#x} is not an "
                  f"allocated order-{c.order} block of the cache")
    handles = {c.handle for c in slab.caches}
    slab_owners = {KERNEL_OWNER[c.source] for c in slab.caches}
    a = v.alloc
    marked = a[np.isin(v.index[a], list(handles)) & np.isin(v.owner[a], list(slab_owners))]
    if marked.size != sum(c.slabs() for c in slab.caches):
        _fail(f"slab: {marked.size} frames are slab pages, the caches hold "
              f"{sum(c.slabs() for c in slab.caches)} slabs")
