"""Active/inactive LRU lists for anon and file pages, per node.

Lists are intrusive doubly linked lists through the frame arrays
(``Frames.nxt/prv``, shared with the buddy free lists: an allocated page is
never on a free list), so they cost no memory per page beyond those arrays.
``Frames.lru`` holds the list id + 1 of the page's list.  The head is the
most recently added end, the tail the oldest.  Only block heads (4 KiB pages
and 2 MiB THPs) are listed.  As Linux's per-node lruvec keeps per-zone sizes
(``NR_ZONE_LRU_BASE``, read by ``lruvec_lru_size(lruvec, lru, zone_idx)``),
each list also counts its pages and entries per zone, so reclaim for a
``reclaim_idx`` knows how much of a list it may take.  Differences from
Linux: no per-memcg lruvecs, no unevictable list, no multi-generational LRU.
"""

from __future__ import annotations

from enum import IntEnum
from math import isqrt

import numpy as np

from mmcore.constants import NR_ZONE_KINDS, PAGEBLOCK_ORDER
from mmcore.phys.physmem import Frames


class LruList(IntEnum):
    INACTIVE_ANON = 0
    ACTIVE_ANON = 1
    INACTIVE_FILE = 2
    ACTIVE_FILE = 3


NR_LRU = 4


class LruLists:
    def __init__(self, frames: Frames, nr_nodes: int) -> None:
        self.fr = frames
        n = nr_nodes * NR_LRU
        self.head = [-1] * n
        self.tail = [-1] * n
        self.count = [0] * n  # pages (not entries): a THP counts 512
        self.entries = [0] * n
        # per zone (global zone id * NR_LRU + list kind): pages and entries
        self.zone_count = [0] * (n * NR_ZONE_KINDS)
        self.zone_entries = [0] * (n * NR_ZONE_KINDS)

    def add(self, pfn: int, lid: int) -> None:
        fr = self.fr
        h = self.head[lid]
        fr.nxt[pfn] = h
        fr.prv[pfn] = -1
        if h >= 0:
            fr.prv[h] = pfn
        else:
            self.tail[lid] = pfn
        self.head[lid] = pfn
        fr.lru[pfn] = lid + 1
        pages = 1 << fr.order[pfn]
        self.count[lid] += pages
        self.entries[lid] += 1
        zi = fr.pb_zone[pfn >> PAGEBLOCK_ORDER] * NR_LRU + lid % NR_LRU
        self.zone_count[zi] += pages
        self.zone_entries[zi] += 1

    def add_new(self, pfn: int, kind: int) -> None:
        """:meth:`add` to list ``kind`` of the node of ``pfn``'s zone (written
        out in the fault path's 4 KiB and 2 MiB cases)."""
        fr = self.fr
        zi = fr.pb_zone[pfn >> PAGEBLOCK_ORDER] * NR_LRU + kind
        lid = zi // (NR_ZONE_KINDS * NR_LRU) * NR_LRU + kind
        head = self.head
        h = head[lid]
        fr.nxt[pfn] = h
        fr.prv[pfn] = -1
        if h >= 0:
            fr.prv[h] = pfn
        else:
            self.tail[lid] = pfn
        head[lid] = pfn
        fr.lru[pfn] = lid + 1
        pages = 1 << fr.order[pfn]
        self.count[lid] += pages
        self.entries[lid] += 1
        self.zone_count[zi] += pages
        self.zone_entries[zi] += 1

    def remove(self, pfn: int) -> int:
        """Take ``pfn`` off its list; return the list id it was on."""
        fr = self.fr
        lid = fr.lru[pfn] - 1
        n, p = fr.nxt[pfn], fr.prv[pfn]
        if p >= 0:
            fr.nxt[p] = n
        else:
            self.head[lid] = n
        if n >= 0:
            fr.prv[n] = p
        else:
            self.tail[lid] = p
        fr.lru[pfn] = 0
        pages = 1 << fr.order[pfn]
        self.count[lid] -= pages
        self.entries[lid] -= 1
        zi = fr.pb_zone[pfn >> PAGEBLOCK_ORDER] * NR_LRU + lid % NR_LRU
        self.zone_count[zi] -= pages
        self.zone_entries[zi] -= 1
        return lid

    def move(self, pfn: int, lid: int) -> None:
        self.remove(pfn)
        self.add(pfn, lid)

    def replace(self, old: int, new: int) -> None:
        """Put ``new`` where ``old`` was (after migration)."""
        fr = self.fr
        lid = fr.lru[old] - 1
        n, p = fr.nxt[old], fr.prv[old]
        fr.nxt[new], fr.prv[new] = n, p
        if p >= 0:
            fr.nxt[p] = new
        else:
            self.head[lid] = new
        if n >= 0:
            fr.prv[n] = new
        else:
            self.tail[lid] = new
        fr.lru[new] = lid + 1
        fr.lru[old] = 0
        zo, zn = fr.pb_zone[old >> PAGEBLOCK_ORDER], fr.pb_zone[new >> PAGEBLOCK_ORDER]
        if zo != zn:  # migrated to another zone (an evacuation)
            pages, kind = 1 << fr.order[new], lid % NR_LRU
            for zi, sign in ((zo * NR_LRU + kind, -1), (zn * NR_LRU + kind, 1)):
                self.zone_count[zi] += sign * pages
                self.zone_entries[zi] += sign

    def rezone(self, lo: int, hi: int, src: int, dst: int) -> None:
        """Pages of [lo, hi) moved from zone ``src`` to zone ``dst`` (a zone
        resize): move their per-zone counts."""
        fr = self.fr
        lru = fr.view("lru")[lo:hi]
        heads = np.nonzero(lru)[0]
        if not heads.size:
            return
        kinds = (lru[heads].astype(np.int64) - 1) % NR_LRU
        pages = np.int64(1) << fr.view("order")[lo:hi][heads].astype(np.int64)
        npages = np.bincount(kinds, weights=pages, minlength=NR_LRU)
        nentries = np.bincount(kinds, minlength=NR_LRU)
        for kind in range(NR_LRU):
            for zid, sign in ((src, -1), (dst, 1)):
                self.zone_count[zid * NR_LRU + kind] += sign * int(npages[kind])
                self.zone_entries[zid * NR_LRU + kind] += sign * int(nentries[kind])

    def eligible(self, nid: int, kind: int, reclaim_idx: int) -> tuple[int, int]:
        """``lruvec_lru_size`` up to ``reclaim_idx``: (pages, entries) of list
        ``kind`` of node ``nid`` in its zones of kind <= ``reclaim_idx``."""
        base = nid * NR_ZONE_KINDS
        pages = entries = 0
        for k in range(reclaim_idx + 1):
            zi = (base + k) * NR_LRU + kind
            pages += self.zone_count[zi]
            entries += self.zone_entries[zi]
        return pages, entries
    def node_counts(self, nid: int) -> list[int]:
        return self.count[nid * NR_LRU : (nid + 1) * NR_LRU]

    def inactive_is_low(self, nid: int, inactive: int) -> bool:
        """``inactive_is_low``: inactive * ratio < active, ratio = sqrt(10 * GiB)."""
        ina = self.count[lid_of(nid, inactive)]
        act = self.count[lid_of(nid, inactive + 1)]
        gb = (ina + act) >> 18
        ratio = isqrt(10 * gb) if gb else 1
        return ina * ratio < act

    def walk(self, lid: int) -> list[int]:
        out, p = [], self.head[lid]
        while p >= 0:
            out.append(p)
            p = self.fr.nxt[p]
        return out


def lid_of(nid: int, kind: int) -> int:
    return nid * NR_LRU + kind
