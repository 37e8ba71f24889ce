"""The PTEs of many anonymous pages at once, for reclaim's scans: pages
of processes on radix page tables are looked up by (owner, 2 MiB region),
one walk each, and their entries read, tested and written as numpy arrays
over the table pages (``bufs``), as :meth:`RadixPageTable.entry` would
find them one by one: a slot in the table the walk stopped at (the PTE
table, or the PMD table for a 2 MiB page).  TLB invalidations are dropped
by key sets, with the same counts as :meth:`Tlb.invalidate` page by page.
Anything else (another owner type, a table of another kind, a missing
entry) is left to the per-page path: :func:`locate` then gives None.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from mmcore.constants import ORDER_1G, ORDER_2M, ORDER_4K, PAGE_SIZE_ORDERS
from mmcore.pagetables.pte import (
    PTE_ACCESSED,
    PTE_LEAF,
    PTE_PFN_SHIFT,
    PTE_SIZE_MASK,
    PTE_SIZE_SHIFT,
    U64,
    make_swap_pte,
)
from mmcore.pagetables.radix import PFN_MASK, SHIFTS
from mmcore.pagetables.tlb import Tlb
from mmcore.virt.process import Process

NOT_ACCESSED = np.uint64(~PTE_ACCESSED & (1 << 64) - 1)
SIZE_MASK, SIZE_SHIFT = np.uint64(PTE_SIZE_MASK), np.uint64(PTE_SIZE_SHIFT)
SIZE_ORDER = np.array(PAGE_SIZE_ORDERS + (-1,), dtype=np.int64)  # PTE size code -> order
TLB_ORDERS = (ORDER_4K, ORDER_2M, ORDER_1G)
MANY_RUNS = 16  # runs of one (owner, region) in a window: more, and groups are found by mask
PAGE_SIZE = np.zeros(256, dtype=bool)  # frame order -> a page size (Process.evict takes it)
PAGE_SIZE[list(TLB_ORDERS)] = True
SWAP_PTE = np.array([make_swap_pte(o) if PAGE_SIZE[o] else 0 for o in range(256)],
                    dtype=np.uint64)


class Ptes:
    """Entries of pages (``owner ids``, ``indexes``): ``e`` the values,
    page ``i`` in slot ``slots[i]`` of table ``tabs[g]`` (a view of table
    page ``tids[g]``) of process ``procs[g]``, for ``i`` in ``members[g]``
    (a slice or an array of positions)."""

    def __init__(self, procs: list[Process], tids: list[int], tabs: list[np.ndarray],
                 members: list[Any], slots: np.ndarray, e: np.ndarray,
                 index: np.ndarray) -> None:
        self.procs, self.tids, self.tabs, self.members = procs, tids, tabs, members
        self.slots, self.e, self.index = slots, e, index

    def by_group(self, sel: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(group, positions) of the pages where ``sel`` (a mask) holds."""
        for g, mine in enumerate(self.members):
            if type(mine) is slice:
                part = np.flatnonzero(sel[mine])
                if len(part):
                    yield g, part + mine.start
            else:
                part = mine[sel[mine]]
                if len(part):
                    yield g, part

    def per_proc(self, sel: np.ndarray) -> Iterator[tuple[Process, np.ndarray]]:
        """(process, positions) of the pages where ``sel`` holds."""
        seen: dict[int, list[Any]] = {}
        for g, part in self.by_group(sel):
            seen.setdefault(id(self.procs[g]), [self.procs[g]]).append(part)
        for proc, *parts in seen.values():
            yield proc, np.concatenate(parts) if len(parts) > 1 else parts[0]

    def clear_accessed(self, sel: np.ndarray) -> None:
        """Clear the accessed bit of the pages where ``sel`` (a mask) holds
        (all have it set) and drop their translations, as
        ``Process.unreferenced`` each."""
        for g, part in self.by_group(sel):
            self.tabs[g][self.slots[part]] = self.e[part] & NOT_ACCESSED
        for proc, part in self.per_proc(sel):
            code = (self.e[part] & SIZE_MASK) >> SIZE_SHIFT
            drop_tlb(proc.tlb, self.index[part], SIZE_ORDER[code.astype(np.intp)])


def locate(owners: dict[int, Any], oids: np.ndarray, index: np.ndarray) -> Ptes | None:
    """The entries of pages of owners ``oids`` at ``index``es (int64), or
    None when one is not a radix process's mapped page."""
    n = len(index)
    if not n:
        return Ptes([], [], [], [], index, np.zeros(0, dtype=np.uint64), index)
    keys = oids.astype(np.int64) << 32 | index >> 9
    starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1  # runs of one (owner, region)
    run_keys = keys[np.concatenate(([0], starts))].tolist() if len(starts) else [int(keys[0])]
    groups: dict[int, int] = {}
    run_group = [groups.setdefault(key, len(groups)) for key in run_keys]
    procs: list[Process] = []
    tids: list[int] = []
    tabs: list[np.ndarray] = []
    shifts: list[int] = []
    for key in groups:
        proc = owners.get(key >> 32)
        if type(proc) is not Process or not proc.radix:
            return None
        pt = proc.pt
        bufs, va, t, lvl = pt.bufs, (key & 0xFFFFFFFF) << 21, pt.root, 0
        while lvl < 3:  # RadixPageTable.entry's walk, down to the region's table
            e = U64.unpack_from(bufs[t], ((va >> SHIFTS[lvl]) & 511) << 3)[0]
            if e == 0:
                return None
            if e & PTE_LEAF:
                break
            t = (e >> PTE_PFN_SHIFT) & PFN_MASK
            lvl += 1
        procs.append(proc)
        tids.append(t)
        tabs.append(np.frombuffer(bufs[t], dtype="<u8"))
        shifts.append(SHIFTS[lvl] - 12)
    members: list[Any]
    if len(groups) == 1:
        members = [slice(0, n)]
        slots = (index >> shifts[0]) & 511
        e = tabs[0][slots]
    else:
        bounds = [0, *starts.tolist(), n]
        slots = np.empty(n, dtype=np.int64)
        e = np.empty(n, dtype=np.uint64)
        if len(run_keys) <= MANY_RUNS:  # run by run
            runs: list[list[slice]] = [[] for _ in groups]
            for r, g in enumerate(run_group):
                run = slice(bounds[r], bounds[r + 1])
                runs[g].append(run)
                slots[run] = (index[run] >> shifts[g]) & 511
                e[run] = tabs[g][slots[run]]
            members = [mine[0] if len(mine) == 1 else
                       np.concatenate([np.arange(r.start, r.stop) for r in mine]) for mine in runs]
        else:
            grp = np.repeat(np.array(run_group), np.diff(bounds))
            members = [np.flatnonzero(grp == g) for g in range(len(groups))]
            for g, mine in enumerate(members):
                slots[mine] = (index[mine] >> shifts[g]) & 511
                e[mine] = tabs[g][slots[mine]]
    if not e.all():
        return None
    return Ptes(procs, tids, tabs, members, slots, e, index)


def drop_tlb(tlb: Tlb, index: np.ndarray, orders: np.ndarray) -> None:
    """``tlb.invalidate(index << PAGE_SHIFT, order)`` of each page."""
    for order, cache in zip(TLB_ORDERS, (tlb.c4k, tlb.c2m, tlb.c1g), strict=True):
        if not cache:
            continue
        keys = index[orders == order] >> order
        if not len(keys):
            continue
        hit = [key for key in set(keys.tolist()) if key in cache]
        for key in hit:
            del cache[key]
        tlb.invalidations += len(hit)


def swap_out(ptes: Ptes, sel: np.ndarray, orders: np.ndarray) -> None:
    """``Process.evict`` of the pages where ``sel`` (a mask) holds, of
    ``orders`` (the frames', one per page of ``ptes``: page sizes only),
    their entries located: swap entries written, translations dropped,
    counts."""
    for g, part in ptes.by_group(sel):
        ptes.tabs[g][ptes.slots[part]] = SWAP_PTE[orders[part]]
    for proc, part in ptes.per_proc(sel):
        o = orders[part]
        drop_tlb(proc.tlb, ptes.index[part], o)
        n4k, n2m = int((o == ORDER_4K).sum()), int((o == ORDER_2M).sum())
        n1g = len(o) - n4k - n2m
        pages = n4k + (n2m << ORDER_2M) + (n1g << ORDER_1G)
        present = proc.present
        present[0] -= n4k
        present[1] -= n2m
        present[2] -= n1g
        proc.swapped += pages
        stats = proc.mm.stats
        stats.swapouts += pages
        stats.swap_used += pages
