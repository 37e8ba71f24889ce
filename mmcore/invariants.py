"""Invariants of MM state, checked in bulk (numpy over the frame arrays).

1. Every frame is free (buddy or pcp) or owned exactly once: block heads and
   their sizes tile every zone with no overlap and no gap.
2. Free-list accounting matches the frame arrays: list links, per-list
   counts, ``nr_free`` and ``free_pages`` of every zone; pcp lists hold only
   PCP frames of their zone.
3. Every mapping points at an owned frame of the right size: each allocated
   anon frame's PTE (found by ``get_pte``) maps exactly it, with its order,
   and each process's count of present PTEs equals the frames it owns.
4. LRU lists are well linked and their counts match, per list and per zone
   (the sizes zone-aware reclaim reads).

A failure raises :class:`~mmcore.errors.InvariantError` naming the first
broken fact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import NR_MT, NR_ORDERS, PAGEBLOCK_ORDER, FrameState
from mmcore.errors import InvariantError
from mmcore.pagetables.pte import PTE_PRESENT, pte_order, pte_pfn
from mmcore.virt.lru import NR_LRU

if TYPE_CHECKING:
    from mmcore.mm import MM


def _fail(msg: str) -> None:
    raise InvariantError(msg)


def check_tiling(mm: MM) -> None:
    fr = mm.frames
    st, order, owner = fr.view("state"), fr.view("order").astype(np.int64), fr.view("owner")
    heads = np.nonzero(st != FrameState.TAIL)[0]
    ends = heads + (np.int64(1) << order[heads])
    cover = np.zeros(fr.n + 1, dtype=np.int64)
    np.add.at(cover, heads, 1)
    np.add.at(cover, np.minimum(ends, fr.n), -1)
    if (ends > fr.n).any():
        _fail("a block extends past the last frame")
    depth = np.cumsum(cover[:-1])
    bad = np.nonzero(depth != 1)[0]
    if bad.size:
        _fail(f"frame {int(bad[0]):#x} is covered by {int(depth[bad[0]])} blocks")
    alloc = st == FrameState.ALLOC
    if (owner[alloc] == 0).any():
        _fail(f"allocated block without owner at {int(np.nonzero(alloc & (owner == 0))[0][0]):#x}")
    if (owner[~alloc] != 0).any():
        _fail(f"free frame with an owner at {int(np.nonzero(~alloc & (owner != 0))[0][0]):#x}")
    if (order[st == FrameState.PCP] != 0).any():
        _fail("pcp frame with order > 0")


def check_free_lists(mm: MM) -> None:
    fr = mm.frames
    st = fr.view("state")
    for z in mm.phys.zones:
        nr_free = [0] * NR_ORDERS
        pages = 0
        for order in range(NR_ORDERS):
            for mt in range(NR_MT):
                n, prev, p = 0, -1, z.heads[order * NR_MT + mt]
                while p >= 0:
                    if st[p] != FrameState.BUDDY or fr.order[p] != order or fr.mt[p] != mt:
                        _fail(f"{z.name}: list ({order},{mt}) holds pfn {p:#x} in wrong state")
                    if fr.prv[p] != prev:
                        _fail(f"{z.name}: broken prev link at pfn {p:#x}")
                    if not (z.start <= p and p + (1 << order) <= z.end) or p & ((1 << order) - 1):
                        _fail(f"{z.name}: free block {p:#x}/{order} misplaced")
                    n += 1
                    prev, p = p, fr.nxt[p]
                want = z.counts[order * NR_MT + mt]
                if n != want:
                    _fail(f"{z.name}: list ({order},{mt}) has {n} blocks, count says {want}")
                nr_free[order] += n
                pages += n << order
        if nr_free != z.nr_free or pages != z.free_pages:
            _fail(f"{z.name}: nr_free/free_pages disagree with the lists")
        in_zone = st[z.start : z.end]
        if int((in_zone == FrameState.BUDDY).sum()) != sum(nr_free):
            _fail(f"{z.name}: BUDDY frames not all on free lists")
        pcp = [p for lst in z.pcp for p in lst]
        if any(st[p] != FrameState.PCP or not z.start <= p < z.end for p in pcp) or len(
            set(pcp)
        ) != len(pcp):
            _fail(f"{z.name}: bad pcp list entry")
        if int((in_zone == FrameState.PCP).sum()) != len(pcp):
            _fail(f"{z.name}: PCP frames not all on pcp lists")


def check_mappings(mm: MM) -> None:
    fr = mm.frames
    st, owner = fr.view("state"), fr.view("owner")
    for proc in mm.procs.values():
        pfns = np.nonzero((owner == proc.owner_id) & (st == FrameState.ALLOC))[0].tolist()
        if len(pfns) != sum(proc.present):
            _fail(f"pid {proc.pid}: owns {len(pfns)} frames but maps {sum(proc.present)} pages")
        for pfn in pfns:
            va = fr.index[pfn] << 12
            loc = proc.pt.get_pte(va)
            e = mm.mem.read(loc) if loc is not None else 0
            if not e & PTE_PRESENT or pte_pfn(e) != pfn or pte_order(e) != fr.order[pfn]:
                _fail(f"pid {proc.pid}: va {va:#x} does not map its frame {pfn:#x}/{fr.order[pfn]}")
    index = fr.view("index")
    for f in mm.files.values():
        pages = np.frombuffer(f.pages, dtype=np.int32)
        idx = np.nonzero(pages >= 0)[0]
        pfns = pages[idx]
        bad = (st[pfns] != FrameState.ALLOC) | (owner[pfns] != f.fid) | (index[pfns] != idx)
        if bad.any():
            i = int(idx[np.argmax(bad)])
            _fail(f"file {f.fid}: page {i} -> pfn {int(pages[i]):#x} not owned by it")
        if idx.size != int(((owner == f.fid) & (st == FrameState.ALLOC)).sum()):
            _fail(f"file {f.fid}: owns frames not in its page index")


def check_lru(mm: MM) -> None:
    fr, lru = mm.frames, mm.lru
    listed = 0
    for lid in range(len(lru.head)):
        pages = lru.walk(lid)
        if len(pages) != lru.entries[lid]:
            _fail(f"lru {lid}: {len(pages)} entries, count says {lru.entries[lid]}")
        if sum(1 << fr.order[p] for p in pages) != lru.count[lid]:
            _fail(f"lru {lid}: page count mismatch")
        if pages and lru.tail[lid] != pages[-1]:
            _fail(f"lru {lid}: tail mismatch")
        for p in pages:
            if fr.lru[p] != lid + 1 or fr.state[p] != FrameState.ALLOC:
                _fail(f"lru {lid}: pfn {p:#x} not an allocated page of this list")
        listed += len(pages)
    if listed != int((fr.view("lru") != 0).sum()):
        _fail("frames marked on an LRU list that no list holds")
    lru_ids = fr.view("lru")
    heads = np.nonzero(lru_ids)[0]
    if heads.size or any(lru.zone_entries):
        kinds = (lru_ids[heads].astype(np.int64) - 1) % NR_LRU
        zones = np.frombuffer(fr.pb_zone, dtype=np.uint8)[heads >> PAGEBLOCK_ORDER]
        slot = zones.astype(np.int64) * NR_LRU + kinds
        n = len(lru.zone_entries)
        entries = np.bincount(slot, minlength=n)
        sizes = np.int64(1) << fr.view("order")[heads].astype(np.int64)
        pages = np.bincount(slot, weights=sizes, minlength=n)
        for i in range(n):
            if entries[i] != lru.zone_entries[i] or pages[i] != lru.zone_count[i]:
                _fail(f"zone {i // NR_LRU} lru kind {i % NR_LRU}: per-zone counts "
                      f"({lru.zone_entries[i]} entries, {lru.zone_count[i]} pages) disagree "
                      f"with the lists ({int(entries[i])}, {int(pages[i])})")


def check_all(mm: MM) -> None:
    check_tiling(mm)
    check_free_lists(mm)
    check_mappings(mm)
    check_lru(mm)
