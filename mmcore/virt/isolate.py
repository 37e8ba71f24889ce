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
what joined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import PAGEBLOCK_ORDER
from mmcore.virt.lru import NR_LRU

if TYPE_CHECKING:
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
