"""Invariants of the intrusive lists (buddy free lists, pcp lists, LRU
lists), read in bulk from the frame arrays instead of walked link by link.

A set of frames linked through ``Frames.nxt/prv`` forms exactly the lists
its heads start when: every member's ``prv`` is -1 precisely at a list
head, each link runs both ways (``nxt[prv[p]] == p``, ``prv[nxt[p]] == p``)
between members of the same list, and following ``nxt`` from every member
reaches the end of a list (no cycle: checked by pointer doubling, log2(n)
numpy gathers).  Then every member lies on the list of its head and the
per-list counts can be taken with ``bincount``.

- free lists: every BUDDY frame is on the list of its zone, order and
  migratetype, starts there when it is that list's head, lies inside its
  zone and is aligned; per-list counts match; pcp lists hold only PCP
  frames of their zone, once each, and every PCP frame;
- LRU lists: every frame marked on a list is an allocated block on that
  list; heads, tails and links are sound; entry and page counts match.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import NR_MT, NR_ORDERS, FrameState
from mmcore.errors import InvariantError

if TYPE_CHECKING:
    from mmcore.invariants.frames import FrameView
    from mmcore.mm import MM

BUDDY, PCP, ALLOC = int(FrameState.BUDDY), int(FrameState.PCP), int(FrameState.ALLOC)


def _fail(msg: str) -> None:
    raise InvariantError(msg)


def ends_reached(succ: np.ndarray) -> np.ndarray:
    """For successor indices ``succ`` (-1: the end of a list), True where
    following them reaches an end, False on a cycle."""
    n = len(succ)
    jump = np.append(np.where(succ < 0, n, succ), n)
    for _ in range(max(1, n.bit_length())):
        jump = jump[jump]
    return jump[:n] == n


class Links:
    """The ``nxt``/``prv`` links of ``members`` (sorted pfns) as indices into
    ``members`` (-1: the end of a list; -2: a frame outside ``members``)."""

    def __init__(self, mm: MM, members: np.ndarray) -> None:
        fr = mm.frames
        self.members = members
        self.nxt = fr.view("nxt")[members].astype(np.int64)
        self.prv = fr.view("prv")[members].astype(np.int64)
        self.succ = self._index(self.nxt)
        self.pred = self._index(self.prv)

    def _index(self, pfns: np.ndarray) -> np.ndarray:
        m = self.members
        i = np.searchsorted(m, pfns).clip(0, max(len(m) - 1, 0))
        inside = (m[i] == pfns) if len(m) else np.zeros(len(pfns), dtype=bool)
        return np.where(pfns < 0, -1, np.where(inside, i, -2))

    def first_bad_prev(self, key: np.ndarray) -> int:
        """Index of the first member whose ``prv`` link is not mirrored by
        its predecessor's ``nxt`` within the same list, else -1."""
        pred = self.pred
        has = pred >= 0
        ok = pred != -2
        p = pred[has]
        ok[has] = (self.succ[p] == np.flatnonzero(has)) & (key[p] == key[has])
        return int(np.argmin(ok)) if not ok.all() else -1

    def first_bad_next(self, key: np.ndarray) -> int:
        """As :meth:`first_bad_prev` for ``nxt`` links."""
        succ = self.succ
        has = succ >= 0
        ok = succ != -2
        s = succ[has]
        ok[has] = (self.pred[s] == np.flatnonzero(has)) & (key[s] == key[has])
        return int(np.argmin(ok)) if not ok.all() else -1


def check_free_lists(mm: MM, v: FrameView) -> None:
    zones = mm.phys.zones
    b = v.buddy
    order = v.order[b].astype(np.int64)
    zid = v.zone_ids(b)
    key = (zid * NR_ORDERS + order) * NR_MT + v.mt[b]
    starts = np.array([z.start for z in zones], dtype=np.int64)
    ends = np.array([z.end for z in zones], dtype=np.int64)
    size = np.int64(1) << order
    bad = (b < starts[zid]) | (b + size > ends[zid]) | (b & (size - 1) != 0)
    if bad.any():
        i = int(np.argmax(bad))
        _fail(f"{zones[int(zid[i])].name}: free block {int(b[i]):#x}/{int(order[i])} misplaced")
    links = Links(mm, b)
    i = links.first_bad_prev(key)
    if i >= 0:
        _fail(f"{zones[int(zid[i])].name}: broken prev link at pfn {int(b[i]):#x}")
    i = links.first_bad_next(key)
    if i >= 0:
        z = zones[int(zid[i])]
        _fail(f"{z.name}: list ({int(order[i])},{int(v.mt[b[i]])}) holds pfn "
              f"{int(links.nxt[i]):#x} in wrong state")
    heads = np.full(len(zones) * NR_ORDERS * NR_MT, -1, dtype=np.int64)
    for z in zones:
        heads[z.zid * NR_ORDERS * NR_MT:(z.zid + 1) * NR_ORDERS * NR_MT] = z.heads
    starting = np.full(len(heads), -1, dtype=np.int64)
    first = links.pred == -1
    dup = np.bincount(key[first], minlength=len(heads)) > 1
    starting[key[first]] = b[first]
    wrong = np.flatnonzero((starting != heads) | dup)
    if wrong.size:
        k = int(wrong[0])
        z, rest = zones[k // (NR_ORDERS * NR_MT)], k % (NR_ORDERS * NR_MT)
        h = heads[k]
        if h >= 0 and not (np.searchsorted(b, h) < len(b) and b[np.searchsorted(b, h)] == h):
            _fail(f"{z.name}: list ({rest // NR_MT},{rest % NR_MT}) holds pfn {h:#x} in "
                  "wrong state")
        _fail(f"{z.name}: list ({rest // NR_MT},{rest % NR_MT}) starts at {h:#x}, but its "
              f"first free block is {int(starting[k]):#x}")
    listed = ends_reached(links.succ)
    if not listed.all():
        _fail(f"{zones[int(zid[np.argmin(listed)])].name}: BUDDY frames not all on free "
              "lists (a free list runs in a cycle)")
    counts = np.bincount(key, minlength=len(heads))
    for z in zones:
        base = z.zid * NR_ORDERS * NR_MT
        for k in range(NR_ORDERS * NR_MT):
            if counts[base + k] != z.counts[k]:
                _fail(f"{z.name}: list ({k // NR_MT},{k % NR_MT}) has {int(counts[base + k])} "
                      f"blocks, count says {z.counts[k]}")
        nr = [sum(z.counts[o * NR_MT:(o + 1) * NR_MT]) for o in range(NR_ORDERS)]
        if nr != list(z.nr_free) or sum(n << o for o, n in enumerate(nr)) != z.free_pages:
            _fail(f"{z.name}: nr_free/free_pages disagree with the lists")
    _check_pcp(mm, v)


def _check_pcp(mm: MM, v: FrameView) -> None:
    per_zone = np.bincount(v.zone_ids(v.pcp), minlength=len(mm.phys.zones))
    for z in mm.phys.zones:
        pcp = np.fromiter((p for lst in z.pcp for p in lst), dtype=np.int64)
        inside = (pcp >= z.start) & (pcp < z.end)
        if not inside.all() or (v.st[pcp] != PCP).any() or np.unique(pcp).size != pcp.size:
            _fail(f"{z.name}: bad pcp list entry")
        if int(per_zone[z.zid]) != pcp.size:
            _fail(f"{z.name}: PCP frames not all on pcp lists")


def check_lru(mm: MM, v: FrameView) -> None:
    lru = mm.lru
    marked = np.flatnonzero(v.lru)
    lid = v.lru[marked].astype(np.int64) - 1
    nlists = len(lru.head)
    bad = (v.st[marked] != ALLOC) | (lid >= nlists)
    if bad.any():
        i = int(np.argmax(bad))
        _fail(f"lru {int(lid[i])}: pfn {int(marked[i]):#x} not an allocated page of this list")
    links = Links(mm, marked)
    i = links.first_bad_prev(lid)
    if i >= 0:
        _fail(f"lru {int(lid[i])}: broken prev link at pfn {int(marked[i]):#x}")
    i = links.first_bad_next(lid)
    if i >= 0:
        _fail(f"lru {int(lid[i])}: pfn {int(links.nxt[i]):#x} not an allocated page of this "
              "list")
    head = np.full(nlists, -1, dtype=np.int64)
    tail = np.full(nlists, -1, dtype=np.int64)
    first, last = links.pred == -1, links.succ == -1
    head[lid[first]] = marked[first]
    tail[lid[last]] = marked[last]
    starts = np.bincount(lid[first], minlength=nlists)
    for k in range(nlists):
        if starts[k] > 1 or head[k] != lru.head[k]:
            _fail(f"lru {k}: head {lru.head[k]:#x} is not the first of the pages marked on it")
        if tail[k] != lru.tail[k]:
            _fail(f"lru {k}: tail mismatch")
    listed = ends_reached(links.succ)
    if not listed.all():
        _fail(f"lru {int(lid[np.argmin(listed)])}: the list runs in a cycle: frames marked "
              "on an LRU list that no list holds")
    entries = np.bincount(lid, minlength=nlists)
    pages = np.bincount(lid, weights=v.size(marked), minlength=nlists)
    for k in range(nlists):
        if entries[k] != lru.entries[k]:
            _fail(f"lru {k}: {int(entries[k])} entries, count says {lru.entries[k]}")
        if pages[k] != lru.count[k]:
            _fail(f"lru {k}: page count mismatch")
