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
        self.zone_kind = np.frombuffer(rc.zone_kind, dtype=np.uint8)
        self.pb_zone = np.frombuffer(fr.pb_zone, dtype=np.uint8)
        self.idx, self.check_zone, self.cap = idx, check_zone, cap

    def skips(self, pfns: np.ndarray, skipped: int) -> np.ndarray | None:
        """Pages skipped for their zone, ``skipped`` skips made already
        (None: none of them)."""
        if not self.check_zone or skipped >= self.cap:
            return None
        above = self.zone_kind[self.pb_zone[pfns >> PAGEBLOCK_ORDER]] > self.idx
        if not above.any():
            return None
        return above & (np.cumsum(above) - above < self.cap - skipped)

    def indexes(self, pfns: np.ndarray) -> np.ndarray:
        hi = self.hi[pfns]
        lo = self.lo[pfns].astype(np.int64)
        return lo | hi.astype(np.int64) << 32 if hi.any() else lo


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
        last, grow = -1, 1
        # a page-cache scan frees every page it takes but skipped, other
        # processes' and pinned ones: its first window is what it must reclaim
        exact = not self.anon and not self.target and not self.check_zone
        while self.reclaimed < self.nr and self.scanned < self.budget and pfn >= 0 and visits:
            room = self.budget - self.scanned
            if self.check_zone and self.skipped < self.cap:
                room += self.cap - self.skipped
            need = self.nr - self.reclaimed
            size = min((need if exact else max(FIRST_WINDOW, 2 * need)) * grow, MAX_WINDOW)
            pfns = gather(prv, pfn, min(visits, room, size))
            k = self.window(pfns)
            visits -= k
            last = int(pfns[k - 1])
            pfn = prv[last]
            grow *= 2
        return last

    def window(self, pfns: np.ndarray) -> int:
        """Decide the pages ``pfns`` (the next ones reached); how many the scan took."""
        win, m = self.win, len(pfns)
        skip = win.skips(pfns, self.skipped)  # None: no page skipped
        oids = win.owner[pfns] if self.target else None
        if skip is None and oids is None:
            ci, pc, cand = None, pfns, None  # every page a candidate
        else:
            cand = ~skip if skip is not None else np.ones(m, dtype=bool)
            if oids is not None:
                cand &= oids == self.target
            ci = np.flatnonzero(cand)
            pc = pfns[ci]
        n = len(pc)
        orders = win.order[pc]
        big = bool(orders.any())
        index = win.indexes(pc)
        ptes: Ptes | None = None
        keep = None  # candidates kept (activated), None: none
        if self.anon:
            ptes = locate(self.rc.mm.owners, win.owner[pc], index)
            if ptes is None:
                return self.by_page(pfns)
            keep = refd = (ptes.e & ACCESSED) != 0
        pinned = self.rc.mm.pinned
        pin = None
        if pinned and n:
            pin = np.isin(pc, np.fromiter(pinned, dtype=np.int64, count=len(pinned)))
            if keep is not None:
                pin &= ~keep
                keep = keep | pin
            else:
                keep = pin
        # where the scan stops: before the page after the one that reclaims
        # the nr-th page or that scans the budget-th
        need = self.nr - self.reclaimed
        if big:
            got = np.int64(1) << orders.astype(np.int64)
            if keep is not None:
                got[keep] = 0
            kc = int(np.searchsorted(np.cumsum(got), need, side="left")) + 1
        else:
            fpos = np.flatnonzero(~keep) if keep is not None else None
            nfree = len(fpos) if fpos is not None else n
            kc = (int(fpos[need - 1]) if fpos is not None else need - 1) + 1 if nfree >= need \
                else n + 1
        k = m if kc > n else kc if ci is None else int(ci[kc - 1]) + 1  # pages, by reclaim
        left = self.budget - self.scanned
        if skip is None:
            k = min(k, left)
        else:
            spos = np.flatnonzero(~skip)
            if len(spos) >= left:
                k = min(k, int(spos[left - 1]) + 1)
        kc = k if ci is None else int(np.searchsorted(ci, k))  # candidates taken
        # the pages before the cut take effect
        skipped = int(skip[:k].sum()) if skip is not None else 0
        self.skipped += skipped
        self.scanned += k - skipped
        if cand is not None:
            self.back.append(pfns[:k][~cand[:k]])
        if keep is None:
            gone = pc[:kc]
            freed = None
        else:
            freed = ~keep
            freed[kc:] = False
            gone = pc[freed]
            self.active.append(pc[:kc][keep[:kc]])
        self.gone.append(gone)
        if big:
            o = orders[freed] if freed is not None else orders[:kc]
            self.reclaimed += int((np.int64(1) << o.astype(np.int64)).sum())
        else:
            self.reclaimed += len(gone)
        if pin is not None and pin[:kc].any():
            self.unmap_fail += int((np.int64(1) << orders[:kc][pin[:kc]].astype(np.int64)).sum())
        if ptes is not None:
            refd[kc:] = False
            if refd.any():
                ptes.clear_accessed(refd)
            if len(gone):
                if freed is None:
                    freed = np.zeros(n, dtype=bool)
                    freed[:kc] = True
                self.evict.append(("anon", gone, ptes, freed, orders))
        elif len(gone):
            sel = freed if freed is not None else slice(0, kc)
            self.evict.append(("file", gone, index[sel], orders[sel], win.owner[gone]))
        return k

    def by_page(self, pfns: np.ndarray) -> int:
        """:meth:`window` page by page (the scan loop itself)."""
        mm = self.rc.mm
        owners, pinned, win = mm.owners, mm.pinned, self.win
        kind, pb_zone = self.rc.zone_kind, mm.frames.pb_zone
        idx, cap, target, anon = self.idx, self.cap, self.target, self.anon
        back: list[int] = []
        active: list[int] = []
        gone: list[int] = []
        evict: list[tuple[Any, int, int, int, Any]] = []
        k = 0
        for pfn in pfns.tolist():
            if not (self.reclaimed < self.nr and self.scanned < self.budget):
                break
            k += 1
            if (self.check_zone and self.skipped < cap
                    and kind[pb_zone[pfn >> PAGEBLOCK_ORDER]] > idx):
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
    if skip is None:
        passed, moved = NONE, pfns[:room]
    else:
        k = len(pfns)
        mpos = np.flatnonzero(~skip)
        if len(mpos) >= room:
            k = int(mpos[room - 1]) + 1
        passed, moved = pfns[:k][skip[:k]], pfns[:k][~skip[:k]]
    if len(moved):
        referenced(rc, win, moved)
    return passed, moved


def referenced(rc: Reclaimer, win: Window, pfns: np.ndarray) -> None:
    """``owner.referenced`` of each page (test and clear), its result unused."""
    mm = rc.mm
    oids = win.owner[pfns]
    if type(mm.owners.get(int(oids[0]))) is File and all(
            type(mm.owners.get(o)) is File for o in np.unique(oids).tolist()):
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
