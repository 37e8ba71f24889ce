"""The built-in page table: an x86-64-style 4-level radix tree.

Table pages are order-0 unmovable allocations from the buddy allocator
(through ``alloc_table``/``free_table`` callbacks); their 512 8-byte entries
live in :class:`~mmcore.pagetables.pte.TableMemory`.  2 MiB pages are leaves in the
PMD level, 1 GiB pages leaves in the PUD level.  A hardware walk
(``get_pte(va, walk=True)``) costs one memory reference per level read; the
optional :class:`~mmcore.pagetables.tlb.PageWalkCache` skips the upper levels it holds.
``last_walk`` keeps the last walk's references as (physical line, step):
each level depends on the one above it, so every reference is a step of
its own (see :mod:`mmcore.pagetables.latency`).

Besides the three operations of every table, ``entry(va)`` gives the value
``get_pte`` would point at and ``map_pte(va, order, pte)`` maps and writes
in one step.  A lookup leaves where it stopped (the level, its table), and
``map_page`` of a va under that table goes on from there; the PTE table of
the 2 MiB region looked up last is remembered, and the PMD table of the
1 GiB region looked up last.  All are forgotten when a table page is freed;
none changes what a hardware walk costs.  ``pte_slots(va)`` lists the slots
in use of a PTE table in one read (munmap and exit skip the empty ones).

Differences from Linux: an empty table page is freed as soon as its last
entry is unmapped (Linux frees page tables only in free_pgtables at munmap
or exit), which keeps page-table memory exact for the metrics; the PWC is
flushed whole when a table page is freed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from mmcore.constants import ORDER_1G, ORDER_2M, ORDER_4K
from mmcore.errors import PageTableError
from mmcore.pagetables.pte import (
    PTE_LEAF,
    PTE_PFN_SHIFT,
    PTE_PRESENT,
    U64,
    PteLoc,
    TableMemory,
    reserved_pte,
)
from mmcore.pagetables.tlb import PageWalkCache

SHIFTS = (39, 30, 21, 12)  # PGD, PUD, PMD, PTE
PATH_SHIFT = (63, 39, 30, 21)  # va >> PATH_SHIFT[level]: the bits that choose that level's table
LEAF_LEVEL = {ORDER_1G: 1, ORDER_2M: 2, ORDER_4K: 3}
PFN_MASK = (1 << 40) - 1
PTE_TABLE = struct.Struct("<512Q")  # a table page's entries


class RadixPageTable:
    def __init__(
        self,
        mem: TableMemory,
        alloc_table: Callable[[], int],
        free_table: Callable[[int], None],
        pwc: PageWalkCache | None = None,
    ) -> None:
        self.mem = mem
        self._alloc, self._free = alloc_table, free_table
        self.pwc = pwc
        self.bufs: dict[int, bytearray] = {}
        self.used: dict[int, int] = {}
        self.parent: dict[int, PteLoc] = {}
        self.walk_refs = 0
        self.last_walk: list[tuple[int, int]] = []
        # Where the last lookup stopped (the va bits that chose its table,
        # level, table, table frees then), so that map_page of that va goes
        # on from there instead of walking again; the PTE table of the 2 MiB
        # region and the PMD table of the 1 GiB region looked up last.  All
        # hold while no table page has been freed since (``frees``).
        self.frees = 0
        self.stop_key = self.stop_lvl = self.stop_t = self.stop_frees = -1
        self.leaf_key = self.leaf_t = self.leaf_frees = -1
        self.pmd_key = self.pmd_t = self.pmd_frees = -1
        self.root = self._new_table()

    def _new_table(self) -> int:
        pfn = self._alloc()
        if pfn < 0:
            raise PageTableError("no memory for a page-table page")
        buf = bytearray(4096)
        self.bufs[pfn] = buf
        self.used[pfn] = 0
        self.mem.add(pfn, buf)
        return pfn

    def table_pages(self) -> int:
        return len(self.bufs)

    def map_page(self, va: int, size_order: int = 0) -> PteLoc:
        leaf = LEAF_LEVEL[size_order]
        bufs = self.bufs
        lvl = self.stop_lvl
        if va >> PATH_SHIFT[lvl] == self.stop_key and self.stop_frees == self.frees and lvl <= leaf:
            lvl, t = self.stop_lvl, self.stop_t  # the fault's walk got this far
        else:
            lvl, t = 0, self.root
        while lvl < leaf:
            off = ((va >> SHIFTS[lvl]) & 511) << 3
            e = U64.unpack_from(bufs[t], off)[0]
            if e == 0:
                new = self._new_table()
                U64.pack_into(bufs[t], off, PTE_PRESENT | (new << PTE_PFN_SHIFT))
                self.used[t] += 1
                self.parent[new] = (t, off)
                t = new
            elif e & PTE_LEAF:
                raise PageTableError(f"{va:#x}: already covered by a larger page")
            else:
                t = (e >> PTE_PFN_SHIFT) & PFN_MASK
            lvl += 1
        off = ((va >> SHIFTS[leaf]) & 511) << 3
        e = U64.unpack_from(bufs[t], off)[0]
        if e == 0:
            U64.pack_into(bufs[t], off, reserved_pte(size_order))
            self.used[t] += 1
        elif not e & PTE_LEAF:
            raise PageTableError(f"{va:#x}: smaller pages are mapped under this entry")
        if leaf == 3:
            self.leaf_key, self.leaf_t, self.leaf_frees = va >> 21, t, self.frees
        return t, off

    def unmap_page(self, va: int) -> None:
        loc = self.get_pte(va)
        if loc is None:
            raise PageTableError(f"{va:#x}: not mapped")
        t, off = loc
        U64.pack_into(self.bufs[t], off, 0)
        self.used[t] -= 1
        while self.used[t] == 0 and t != self.root:
            parent, poff = self.parent.pop(t)
            del self.bufs[t], self.used[t]
            self.mem.remove(t)
            self._free(t)
            self.frees += 1
            if self.pwc is not None:
                self.pwc.flush()
            U64.pack_into(self.bufs[parent], poff, 0)
            self.used[parent] -= 1
            t = parent

    def get_pte(self, va: int, walk: bool = False) -> PteLoc | None:
        if walk:
            return self._walk(va)
        if not self.entry(va):
            return None
        return self.stop_t, ((va >> SHIFTS[self.stop_lvl]) & 511) << 3

    def entry(self, va: int) -> int:
        """The entry ``get_pte(va)`` would point at (0 when it would give
        None), without building its place."""
        bufs = self.bufs
        if va >> 21 == self.leaf_key and self.leaf_frees == self.frees:
            lvl, t = 3, self.leaf_t
            e = U64.unpack_from(bufs[t], ((va >> 12) & 511) << 3)[0]
        else:
            if va >> 30 == self.pmd_key and self.pmd_frees == self.frees:
                lvl, t = 2, self.pmd_t
            else:
                lvl, t = 0, self.root
            while True:
                e = U64.unpack_from(bufs[t], ((va >> SHIFTS[lvl]) & 511) << 3)[0]
                if lvl == 3 or e & PTE_LEAF or e == 0:
                    break
                t = (e >> PTE_PFN_SHIFT) & PFN_MASK
                lvl += 1
                if lvl == 2:
                    self.pmd_key, self.pmd_t, self.pmd_frees = va >> 30, t, self.frees
            if lvl == 3:
                self.leaf_key, self.leaf_t, self.leaf_frees = va >> 21, t, self.frees
        self.stop_key, self.stop_lvl, self.stop_t, self.stop_frees = (
            va >> PATH_SHIFT[lvl], lvl, t, self.frees)
        return e

    def pte_slots(self, va: int) -> list[int]:
        """The slots (0-511, ascending) that hold an entry in the PTE table
        of ``va``'s 2 MiB region; none when that region has no PTE table."""
        t, lvl = self.root, 0
        while lvl < 3:
            e = U64.unpack_from(self.bufs[t], ((va >> SHIFTS[lvl]) & 511) << 3)[0]
            if e == 0 or e & PTE_LEAF:
                return []
            t = (e >> PTE_PFN_SHIFT) & PFN_MASK
            lvl += 1
        return [i for i, w in enumerate(PTE_TABLE.unpack(self.bufs[t])) if w]

    def map_pte(self, va: int, size_order: int, pte: int) -> None:
        """``map_page`` and write ``pte`` into the slot it gives."""
        lvl = self.stop_lvl
        if (lvl == LEAF_LEVEL[size_order] and va >> PATH_SHIFT[lvl] == self.stop_key
                and self.stop_frees == self.frees):  # a fault's lookup found the leaf's table
            t = self.stop_t
            buf, off = self.bufs[t], ((va >> SHIFTS[lvl]) & 511) << 3
            if not U64.unpack_from(buf, off)[0]:
                U64.pack_into(buf, off, pte)
                self.used[t] += 1
                return
        t, off = self.map_page(va, size_order)
        U64.pack_into(self.bufs[t], off, pte)

    def _walk(self, va: int) -> PteLoc | None:
        """A hardware walk: through the PWC, counting its references."""
        bufs, t, lvl = self.bufs, self.root, 0
        pwc = self.pwc
        if pwc is not None:
            lvl, t = pwc.lookup(va, t)
        refs = 0
        trail = []
        while True:
            off = ((va >> SHIFTS[lvl]) & 511) << 3
            e = U64.unpack_from(bufs[t], off)[0]
            refs += 1
            trail.append(((t << 6) + (off >> 6), refs))
            if lvl == 3 or e & PTE_LEAF or e == 0:
                break
            t = (e >> PTE_PFN_SHIFT) & PFN_MASK
            if pwc is not None:
                pwc.fill(lvl, va, t)
            lvl += 1
        self.walk_refs += refs
        self.last_walk = trail
        self.stop_key, self.stop_lvl, self.stop_t, self.stop_frees = (
            va >> PATH_SHIFT[lvl], lvl, t, self.frees)
        return (t, off) if e else None

    def destroy(self) -> None:
        """Give every table page back (only for a table with no mappings)."""
        for pfn in list(self.bufs):
            self.mem.remove(pfn)
            self._free(pfn)
        self.bufs.clear()
        self.used.clear()
        self.parent.clear()
        self.frees += 1
