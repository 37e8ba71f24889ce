"""The LRU list surgery of a reclaim scan, done once per scan: the pages a
scan reached form the tail segment of the list it scanned (every page it
visits leaves the tail, as ``isolate_lru_folios`` takes them off), so the
scan first decides what becomes of each page and :func:`settle` then cuts
the segment off at once and puts the pages back where a page-by-page scan
would have left them (``move_folios_to_lru``): those passed over at the
head of the same list and those moved (activated or deactivated) at the
head of the other list, each in the order the scan reached them, so the
last one reached heads its list; the rest (evicted) are off every list.
The per-list and per-zone page and entry counts change by what left and
what joined.  :func:`settle_arrays` does the same for numpy arrays of pfns,
with array operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import PAGEBLOCK_ORDER
from mmcore.virt.lru import NR_LRU

if TYPE_CHECKING:
    from mmcore.phys.physmem import Frames
    from mmcore.virt.lru import LruLists


def settle(lru: LruLists, lid: int, last: int, back: list[int], moved: list[int], to: int,
           gone: list[int]) -> None:
    """The scan of list ``lid`` reached its tail up to page ``last`` (the
    one nearest the head): put ``back`` at the head of ``lid``, ``moved``
    at the head of list ``to``, and take ``gone`` off the lists."""
    fr = lru.fr
    nxt, prv, mark, order, pb_zone = fr.nxt, fr.prv, fr.lru, fr.order, fr.pb_zone
    new_tail = prv[last]
    if new_tail >= 0:
        nxt[new_tail] = -1
    else:
        lru.head[lid] = -1
    lru.tail[lid] = new_tail
    count, entries = lru.count, lru.entries
    zone_count, zone_entries = lru.zone_count, lru.zone_entries
    kind, to_kind = lid % NR_LRU, to % NR_LRU
    for pfn in gone:
        pages = 1 << order[pfn]
        count[lid] -= pages
        zi = pb_zone[pfn >> PAGEBLOCK_ORDER] * NR_LRU + kind
        zone_count[zi] -= pages
        zone_entries[zi] -= 1
        mark[pfn] = 0
        nxt[pfn] = -1  # as taken off as the tail: its prv link is left as it was
    entries[lid] -= len(gone)
    if new_tail < 0 and back and gone and gone[-1] == last:
        # the list's first page, evicted last: by then a page-by-page scan
        # had put ``back`` at the head, the first of them in front of it (a stale link)
        prv[last] = back[0]
    for pfn in moved:
        pages = 1 << order[pfn]
        count[lid] -= pages
        count[to] += pages
        zi = pb_zone[pfn >> PAGEBLOCK_ORDER] * NR_LRU
        zone_count[zi + kind] -= pages
        zone_entries[zi + kind] -= 1
        zone_count[zi + to_kind] += pages
        zone_entries[zi + to_kind] += 1
        mark[pfn] = to + 1
    entries[lid] -= len(moved)
    entries[to] += len(moved)
    _prepend(lru, lid, back)
    _prepend(lru, to, moved)


def _prepend(lru: LruLists, lid: int, pfns: list[int]) -> None:
    """Link ``pfns`` at the head of list ``lid``, each before the one
    before it (as :meth:`LruLists.add` of each in turn)."""
    if not pfns:
        return
    nxt, prv = lru.fr.nxt, lru.fr.prv
    follow = lru.head[lid]
    if follow < 0:
        lru.tail[lid] = pfns[0]
    for pfn in pfns:
        nxt[pfn] = follow
        if follow >= 0:
            prv[follow] = pfn
        follow = pfn
    prv[follow] = -1
    lru.head[lid] = follow


SMALL = 48  # fewer pages than this: the list loops are faster


def settle_arrays(lru: LruLists, lid: int, last: int, back: np.ndarray, moved: np.ndarray,
                  to: int, gone: np.ndarray) -> None:
    """:func:`settle` with arrays (int64) of pfns."""
    if len(back) + len(moved) + len(gone) < SMALL:
        settle(lru, lid, last, back.tolist(), moved.tolist(), to, gone.tolist())
        return
    fr = lru.fr
    prv = fr.prv
    new_tail = prv[last]
    if new_tail >= 0:
        fr.nxt[new_tail] = -1
    else:
        lru.head[lid] = -1
    lru.tail[lid] = new_tail
    mark = fr.view("lru")
    count, entries = lru.count, lru.entries
    kind, to_kind = lid % NR_LRU, to % NR_LRU
    if len(gone):
        for zi, pages, n in _per_zone(fr, gone):
            count[lid] -= pages
            lru.zone_count[zi + kind] -= pages
            lru.zone_entries[zi + kind] -= n
        mark[gone] = 0
        fr.view("nxt")[gone] = -1  # as taken off as the tail: their prv links are left as they were
        entries[lid] -= len(gone)
        if new_tail < 0 and len(back) and gone[-1] == last:
            prv[last] = int(back[0])  # see settle
    if len(moved):
        for zi, pages, n in _per_zone(fr, moved):
            count[lid] -= pages
            count[to] += pages
            lru.zone_count[zi + kind] -= pages
            lru.zone_entries[zi + kind] -= n
            lru.zone_count[zi + to_kind] += pages
            lru.zone_entries[zi + to_kind] += n
        mark[moved] = to + 1
        entries[lid] -= len(moved)
        entries[to] += len(moved)
    _prepend_array(lru, lid, back)
    _prepend_array(lru, to, moved)


def _per_zone(fr: Frames, pfns: np.ndarray) -> list[tuple[int, int, int]]:
    """(zone id * NR_LRU, pages, entries) of the pages ``pfns``, zone by zone."""
    zones = np.frombuffer(fr.pb_zone, dtype=np.uint8)[pfns >> PAGEBLOCK_ORDER]
    order = fr.view("order")[pfns]
    big = order.any()
    first = int(zones[0])
    if (zones == first).all():
        pages = int((np.int64(1) << order.astype(np.int64)).sum()) if big else len(pfns)
        return [(first * NR_LRU, pages, len(pfns))]
    out = []
    for z in np.unique(zones).tolist():
        mine = zones == z
        n = int(mine.sum())
        pages = int((np.int64(1) << order[mine].astype(np.int64)).sum()) if big else n
        out.append((z * NR_LRU, pages, n))
    return out


def _prepend_array(lru: LruLists, lid: int, pfns: np.ndarray) -> None:
    """:func:`_prepend` of an array."""
    if not len(pfns):
        return
    fr = lru.fr
    nxt, prv = fr.view("nxt"), fr.view("prv")
    follow, first, newest = lru.head[lid], int(pfns[0]), int(pfns[-1])
    if follow < 0:
        lru.tail[lid] = first
    else:
        fr.prv[follow] = first
    nxt[first] = follow
    nxt[pfns[1:]] = pfns[:-1]
    prv[pfns[:-1]] = pfns[1:]
    fr.prv[newest] = -1
    lru.head[lid] = newest
