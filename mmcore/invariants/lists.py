"""Invariants of the intrusive lists, walked link by link (the costly part of
a full check).

- free lists: every listed block is a BUDDY head of the list's order and
  migratetype, inside its zone and aligned; links run both ways; per-list
  counts match; pcp lists hold only PCP frames of their zone, once each;
- LRU lists: links and tails are sound, entry and page counts match, every
  listed page is an allocated page marked with this list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import NR_MT, NR_ORDERS, FrameState
from mmcore.errors import InvariantError

if TYPE_CHECKING:
    from mmcore.mm import MM


def _fail(msg: str) -> None:
    raise InvariantError(msg)


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
