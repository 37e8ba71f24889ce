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

import functools
from enum import IntEnum
from math import isqrt
from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import NR_ZONE_KINDS, PAGEBLOCK_ORDER
from mmcore.phys.physmem import Frames

if TYPE_CHECKING:
    from bpfvm.native import MethodDef


class LruList(IntEnum):
    INACTIVE_ANON = 0
    ACTIVE_ANON = 1
    INACTIVE_FILE = 2
    ACTIVE_FILE = 3


NR_LRU = 4


# LLVM assembly of LruLists.add_new over the descriptor's arrays (DESC_FIELDS)
_IR = """
define i64 @lru_add_new(ptr %d, i64 %pfn, i64 %kind) {{
entry:
  %pb = lshr i64 %pfn, {pageblock_order}
  %pbzone = call ptr @word(ptr %d, i64 10)
  %zp = getelementptr i8, ptr %pbzone, i64 %pb
  %z8 = load i8, ptr %zp
  %z = zext i8 %z8 to i64
  %zk = mul i64 %z, {nr_lru}
  %zi = add i64 %zk, %kind
  %node = udiv i64 %zi, {per_node}
  %nk = mul i64 %node, {nr_lru}
  %lid = add i64 %nk, %kind
  %h = call i64 @at64(ptr %d, i64 0, i64 %lid)
  call void @set32(ptr %d, i64 6, i64 %pfn, i64 %h)
  call void @set32(ptr %d, i64 7, i64 %pfn, i64 -1)
  %has = icmp sge i64 %h, 0
  br i1 %has, label %linked, label %first
linked:
  call void @set32(ptr %d, i64 7, i64 %h, i64 %pfn)
  br label %listed
first:
  %tail = call ptr @word(ptr %d, i64 1)
  %tp = getelementptr i64, ptr %tail, i64 %lid
  store i64 %pfn, ptr %tp
  br label %listed
listed:
  %head = call ptr @word(ptr %d, i64 0)
  %hp = getelementptr i64, ptr %head, i64 %lid
  store i64 %pfn, ptr %hp
  %lid1 = add i64 %lid, 1
  call void @set8(ptr %d, i64 8, i64 %pfn, i64 %lid1)
  %order = call ptr @word(ptr %d, i64 9)
  %op = getelementptr i8, ptr %order, i64 %pfn
  %o8 = load i8, ptr %op
  %o = zext i8 %o8 to i64
  %pages = shl i64 1, %o
  call void @add64(ptr %d, i64 2, i64 %lid, i64 %pages)
  call void @add64(ptr %d, i64 3, i64 %lid, i64 1)
  call void @add64(ptr %d, i64 4, i64 %zi, i64 %pages)
  call void @add64(ptr %d, i64 5, i64 %zi, i64 1)
  ret i64 0
}}
"""
DESC_FIELDS = ("head", "tail", "count", "entries", "zone_count", "zone_entries")


@functools.cache
def _compiled_add_new() -> MethodDef | None:
    """The method record of the compiled :meth:`LruLists.add_new` (bound to
    a descriptor), or None (no CPython C API, or ``BPFVM_NATIVE=0``)."""
    from bpfvm import native

    text = _IR.format(pageblock_order=PAGEBLOCK_ORDER, nr_lru=NR_LRU,
                      per_node=NR_ZONE_KINDS * NR_LRU)
    defs = native.link_entry_points(text, (("lru_add_new", 2, True),), "mmcore-lru")
    return defs["lru_add_new"] if defs is not None else None


class LruLists:
    """The lists of every node.  Heads, tails and counts are int64 arrays,
    read and written as Python ints through memoryviews; :meth:`add_new`,
    the fault path's step, is compiled where it can be (the same steps, a
    builtin bound to the arrays' descriptor; ``BPFVM_NATIVE=0`` keeps the
    Python method)."""

    def __init__(self, frames: Frames, nr_nodes: int) -> None:
        self.fr = frames
        n = nr_nodes * NR_LRU
        arrays = {
            "head": np.full(n, -1, dtype=np.int64),
            "tail": np.full(n, -1, dtype=np.int64),
            "count": np.zeros(n, dtype=np.int64),  # pages (not entries): a THP counts 512
            "entries": np.zeros(n, dtype=np.int64),
            # per zone (global zone id * NR_LRU + list kind): pages and entries
            "zone_count": np.zeros(n * NR_ZONE_KINDS, dtype=np.int64),
            "zone_entries": np.zeros(n * NR_ZONE_KINDS, dtype=np.int64),
        }
        self.head, self.tail, self.count, self.entries, self.zone_count, self.zone_entries = (
            memoryview(arrays[f]) for f in DESC_FIELDS)
        defn = _compiled_add_new()
        if defn is not None:
            from bpfvm.native import builtin

            pb_zone = np.frombuffer(frames.pb_zone, dtype=np.uint8)
            words = [arrays[f].ctypes.data for f in DESC_FIELDS]
            words += [frames.view(f).ctypes.data for f in ("nxt", "prv", "lru", "order")]
            desc = np.array(words + [pb_zone.ctypes.data], dtype=np.int64)
            self._keep = (arrays, pb_zone, desc)
            self.add_new = builtin(defn, int(desc.ctypes.data))  # type: ignore[method-assign]
        else:
            self._keep = (arrays,)

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

    def add_new(self, pfn: int, kind: int) -> int:
        """:meth:`add` to list ``kind`` of the node of ``pfn``'s zone (the
        fault path's step; compiled where it can be); returns 0."""
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
        return 0

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
        return self.count[nid * NR_LRU : (nid + 1) * NR_LRU].tolist()

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
