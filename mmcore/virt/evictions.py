"""The evictions of a reclaim scan, after its lists are settled: each page
unmapped (``owner.evict``) and freed in the order the scan reached them.
When every page is an anonymous page of a radix-table process (its PTE
located by the scan, :mod:`mmcore.virt.ptebits`) or a page-cache page
(:class:`~mmcore.virt.pagecache.File`), the unmaps are done as arrays,
owner by owner (they touch only that owner's table, TLB and counts, and
the node's nonresident age, taken in the scan's order) and the frees
follow one by one; otherwise each page is evicted and freed in turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from mmcore.constants import PAGEBLOCK_ORDER
from mmcore.virt.pagecache import File
from mmcore.virt.ptebits import PAGE_SIZE, swap_out

if TYPE_CHECKING:
    from mmcore.mm import MM


def evict_and_free(mm: MM, parts: list[tuple[Any, ...]]) -> None:
    """Evict and free the pages of ``parts`` (see
    :class:`~mmcore.virt.tailscan.InactiveScan`), in order."""
    free = mm.pa.free
    if not batchable(mm, parts):
        for owner, pfn, index, order, loc in pages(mm, parts):
            if loc is None:
                owner.evict(pfn, index, order)
            else:
                owner.evict(pfn, index, order, loc)
            free(pfn)
        return
    files = [p for p in parts if p[0] == "file"]
    if files:
        drop_cached(mm, *(np.concatenate([p[i] for p in files]) for i in (1, 2, 4)))
    for part in parts:
        if part[0] == "anon":
            swap_out(part[2], part[3], part[4])
    for part in parts:
        for pfn in part[1].tolist():
            free(pfn)


def batchable(mm: MM, parts: list[tuple[Any, ...]]) -> bool:
    owners = mm.owners
    for part in parts:
        if part[0] == "pages":
            return False
        if part[0] == "anon" and not PAGE_SIZE[part[4][part[3]]].all():
            return False
        if part[0] == "file" and not all(type(owners.get(o)) is File
                                         for o in np.unique(part[4]).tolist()):
            return False
    return True


def pages(mm: MM, parts: list[tuple[Any, ...]]) -> Iterator[tuple[Any, int, int, int, Any]]:
    """Every page of ``parts``: (owner, pfn, index, order, PTE place or None)."""
    owners = mm.owners
    for part in parts:
        if part[0] == "pages":
            yield from part[1]
        elif part[0] == "file":
            _, pfns, index, orders, oids = part
            for pfn, i, o, oid in zip(pfns.tolist(), index.tolist(), orders.tolist(),
                                      oids.tolist(), strict=True):
                yield owners[oid], pfn, i, o, None
        else:
            _, pfns, ptes, sel, orders = part
            grp = np.zeros(len(sel), dtype=np.intp)
            for g, mine in enumerate(ptes.members):
                grp[mine] = g
            for pfn, j in zip(pfns.tolist(), np.flatnonzero(sel).tolist(), strict=True):
                g = int(grp[j])
                yield (ptes.procs[g], pfn, int(ptes.index[j]), int(orders[j]),
                       (ptes.tids[g], int(ptes.slots[j]) << 3))


def drop_cached(mm: MM, pfns: np.ndarray, index: np.ndarray, oids: np.ndarray) -> None:
    """``File.evict`` of each page, in order (:meth:`File.evict_many` file by file)."""
    ws = mm.workingset
    first = int(oids[0])
    files = ([(first, slice(None))] if (oids == first).all()
             else [(o, oids == o) for o in np.unique(oids).tolist()])
    ages = None
    if ws.enabled:  # workingset_eviction: the node's age at each eviction, in turn
        zones = mm.phys.zones
        if len(mm.phys.nodes) == 1:
            nids, nid = None, zones[0].nid
        else:
            zids = np.frombuffer(mm.frames.pb_zone, dtype=np.uint8)[pfns >> PAGEBLOCK_ORDER]
            nids = np.array([z.nid for z in zones], dtype=np.int64)[zids]
            nid = int(nids[0])
        if nids is None or (nids == nid).all():
            ages = np.arange(len(pfns), dtype=np.int64) + ws.evictions(nid, len(pfns))
        else:
            ages = np.empty(len(pfns), dtype=np.int64)
            for nid in np.unique(nids).tolist():
                mine = nids == nid
                n = int(mine.sum())
                ages[mine] = np.arange(n) + ws.evictions(nid, n)
    for oid, mine in files:
        mm.owners[oid].evict_many(pfns[mine], index[mine],
                                  None if ages is None else ages[mine])
