"""Reclaim's scans of an LRU list's tail, window by window, as arrays.

A scan (:class:`~mmcore.virt.reclaim.Reclaimer`'s ``shrink_inactive`` and
``shrink_active``) reaches the pages of a list from its tail by ``prv``
links and stops on conditions checked before each page.  Here a window
of the next pages is gathered (at most as many as the scan could still
visit), decided with numpy (zones above ``reclaim_idx`` skipped until
``SWAP_CLUSTER_MAX_SKIPPED`` skips, the target filter, anon accessed bits
read by :mod:`mmcore.virt.ptebits`, pinned pages) and cut where the
page-by-page scan would have stopped (cumulative counts against its
conditions); only the pages before the cut take effect.  Windows grow
while the scan goes on.  A window holding a page that is not an
anonymous page of a radix-table process (on an anon list) goes page by
page (:meth:`InactiveScan.by_page`), as the loop this replaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mmcore.constants import PAGEBLOCK_ORDER
from mmcore.pagetables.pte import PTE_ACCESSED
from mmcore.virt.pagecache import File
from mmcore.virt.ptebits import Ptes, locate

if TYPE_CHECKING:
    from mmcore.virt.reclaim import Reclaimer

FIRST_WINDOW = 128  # pages, at least
MAX_WINDOW = 8192
ACCESSED = np.uint64(PTE_ACCESSED)
NONE = np.zeros(0, dtype=np.int64)


def gather(prv: Any, pfn: int, n: int) -> np.ndarray:
    """The pfns from ``pfn`` by ``prv`` links: ``n`` of them, or up to the list's end."""
    out = []
    append = out.append
    for _ in range(n):
        append(pfn)
        pfn = prv[pfn]
        if pfn < 0:
            break
    return np.array(out, dtype=np.int64)


class Window:
    """Views of the arrays a scan decides by."""

    def __init__(self, rc: Reclaimer, idx: int, check_zone: bool, cap: int) -> None:
        fr = rc.mm.frames
        self.owner, self.order = fr.view("owner"), fr.view("order")
        self.lo, self.hi = fr.view("index_lo"), fr.view("index_hi")
        self.kind = np.frombuffer(rc.zone_kind, dtype=np.uint8)[
            np.frombuffer(fr.pb_zone, dtype=np.uint8)]  # zone kind per pageblock
        self.idx, self.check_zone, self.cap = idx, check_zone, cap

    def skips(self, pfns: np.ndarray, skipped: int) -> np.ndarray:
        """Pages skipped for their zone, ``skipped`` skips made already."""
        if not self.check_zone:
            return np.zeros(len(pfns), dtype=bool)
        above = self.kind[pfns >> PAGEBLOCK_ORDER] > self.idx
        if skipped >= self.cap:
            return np.zeros(len(pfns), dtype=bool)
        return above & (np.cumsum(above) - above < self.cap - skipped)

    def indexes(self, pfns: np.ndarray) -> np.ndarray:
        return self.lo[pfns].astype(np.int64) | self.hi[pfns].astype(np.int64) << 32


def cut(steps: np.ndarray, room: int) -> int:
    """Pages before the first whose preceding ``steps`` add up to ``room``."""
    before = np.cumsum(steps) - steps
    return int(np.searchsorted(before, room, side="left"))


class InactiveScan:
    """``shrink_inactive``'s scan of list ``lid``: the pages it reached by
    fate, in order, and its counts."""

    def __init__(self, rc: Reclaimer, lid: int, anon: bool, nr: int, budget: int,
                 target: int, check_zone: bool, idx: int, cap: int) -> None:
        self.rc, self.lid, self.anon = rc, lid, anon
        self.nr, self.budget, self.target = nr, budget, target
        self.check_zone, self.idx, self.cap = check_zone, idx, cap
        self.win = Window(rc, idx, check_zone, cap)
        self.reclaimed = self.scanned = self.skipped = self.unmap_fail = 0
        self.back: list[np.ndarray] = []
        self.active: list[np.ndarray] = []
        self.gone: list[np.ndarray] = []
        # evictions, window by window: ("anon", pfns, Ptes, mask, orders of the Ptes' pages),
        # ("file", pfns, indexes, orders, owner ids) or ("pages", [(owner, pfn, index, order, loc)])
        self.evict: list[tuple[Any, ...]] = []

    def run(self, pfn: int, visits: int) -> int:
        """Scan from ``pfn`` (at most ``visits`` pages); the last page reached, or -1."""
        prv = self.rc.mm.frames.prv
        last, size = -1, max(FIRST_WINDOW, 2 * self.nr)
        while self.reclaimed < self.nr and self.scanned < self.budget and pfn >= 0 and visits:
            room = self.budget - self.scanned
            if self.check_zone and self.skipped < self.cap:
                room += self.cap - self.skipped
            pfns = gather(prv, pfn, min(visits, room, size))
            k = self.window(pfns)
            visits -= k
            last = int(pfns[k - 1])
            pfn = prv[last]
            size = min(size * 2, MAX_WINDOW)
        return last

    def window(self, pfns: np.ndarray) -> int:
        """Decide the pages ``pfns`` (the next ones reached); how many the scan took."""
        win, m = self.win, len(pfns)
        skip = win.skips(pfns, self.skipped)
        scan = ~skip
        oids = win.owner[pfns]
        cand = scan & (oids == self.target) if self.target else scan
        ci = np.flatnonzero(cand)
        pc = pfns[ci]
        index, orders = win.indexes(pc), win.order[pc]
        ptes: Ptes | None = None
        if self.anon:
            ptes = locate(self.rc.mm.owners, oids[ci], index)
            if ptes is None:
                return self.by_page(pfns)
            refd = (ptes.e & ACCESSED) != 0
        else:
            refd = np.zeros(len(ci), dtype=bool)
        pinned = self.rc.mm.pinned
        pin = (~refd & np.isin(pc, np.fromiter(pinned, dtype=np.int64, count=len(pinned)))
               if pinned else np.zeros(len(ci), dtype=bool))
        freed = ~(refd | pin)
        got = np.zeros(m, dtype=np.int64)
        got[ci[freed]] = np.int64(1) << orders[freed].astype(np.int64)
        k = min(m, cut(got, self.nr - self.reclaimed),
                cut(scan.astype(np.int64), self.budget - self.scanned))
        # the pages before the cut take effect
        inside = ci < k
        self.skipped += int(skip[:k].sum())
        self.scanned += int(scan[:k].sum())
        self.reclaimed += int(got[:k].sum())
        self.back.append(pfns[:k][~cand[:k]])
        self.active.append(pc[inside & ~freed])
        sel = inside & pin
        if sel.any():
            self.unmap_fail += int((np.int64(1) << orders[sel].astype(np.int64)).sum())
        gone = inside & freed
        self.gone.append(pc[gone])
        if ptes is not None:
            sel = inside & refd
            if sel.any():
                ptes.clear_accessed(sel)
            if gone.any():
                self.evict.append(("anon", pc[gone], ptes, gone, orders))
        elif gone.any():
            self.evict.append(("file", pc[gone], index[gone], orders[gone], oids[ci][gone]))
        return k

    def by_page(self, pfns: np.ndarray) -> int:
        """:meth:`window` page by page (the scan loop itself)."""
        mm = self.rc.mm
        owners, pinned, win = mm.owners, mm.pinned, self.win
        kind, idx, cap, target, anon = win.kind, self.idx, self.cap, self.target, self.anon
        back: list[int] = []
        active: list[int] = []
        gone: list[int] = []
        evict: list[tuple[Any, int, int, int, Any]] = []
        k = 0
        for pfn in pfns.tolist():
            if not (self.reclaimed < self.nr and self.scanned < self.budget):
                break
            k += 1
            if self.check_zone and self.skipped < cap and kind[pfn >> PAGEBLOCK_ORDER] > idx:
                self.skipped += 1
                back.append(pfn)
                continue
            self.scanned += 1
            owner_id = int(win.owner[pfn])
            if target and owner_id != target:
                back.append(pfn)
                continue
            owner = owners[owner_id]
            index, order = int(win.lo[pfn]) | int(win.hi[pfn]) << 32, int(win.order[pfn])
            loc = owner.unreferenced(pfn, index) if anon else None
            if anon and loc is None:
                active.append(pfn)
            elif pfn in pinned:
                self.unmap_fail += 1 << order
                active.append(pfn)
            else:
                gone.append(pfn)
                evict.append((owner, pfn, index, order, loc))
                self.reclaimed += 1 << order
        for dst, part in ((self.back, back), (self.active, active), (self.gone, gone)):
            dst.append(np.array(part, dtype=np.int64))
        if evict:
            self.evict.append(("pages", evict))
        return k


def active_window(rc: Reclaimer, win: Window, pfns: np.ndarray, skipped: int,
                  room: int) -> tuple[np.ndarray, np.ndarray]:
    """``shrink_active``'s decisions over the pages ``pfns``, ``skipped``
    skips made and ``room`` pages still to move: the pages it passes over
    and those it moves (their referenced bits cleared), up to where it stops."""
    skip = win.skips(pfns, skipped)
    move = ~skip
    k = min(len(pfns), cut(move.astype(np.int64), room))
    pfns, skip, move = pfns[:k], skip[:k], move[:k]
    moved = pfns[move]
    if len(moved):
        referenced(rc, win, moved)
    return pfns[skip], moved


def referenced(rc: Reclaimer, win: Window, pfns: np.ndarray) -> None:
    """``owner.referenced`` of each page (test and clear), its result unused."""
    mm = rc.mm
    oids = win.owner[pfns]
    if all(type(mm.owners.get(o)) is File for o in np.unique(oids).tolist()):
        # PG_referenced cleared
        mm.frames.view("ref")[pfns] = 0
        return
    ptes = locate(mm.owners, oids, win.indexes(pfns))
    if ptes is not None:
        sel = (ptes.e & ACCESSED) != 0
        if sel.any():
            ptes.clear_accessed(sel)
        return
    owners, lo, hi = mm.owners, win.lo, win.hi
    for pfn, oid in zip(pfns.tolist(), oids.tolist(), strict=True):
        owners[oid].referenced(pfn, int(lo[pfn]) | int(hi[pfn]) << 32)
