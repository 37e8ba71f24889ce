"""The page-table interface, the PTE format and the byte memory PTEs live in.

Every page-table implementation offers exactly three operations:

* ``map_page(va, size_order=0) -> PteLoc``: make room for the PTE of the page
  of ``1 << size_order`` frames at ``va`` and say where it lives;
* ``unmap_page(va)``: release that PTE;
* ``get_pte(va, walk=False) -> PteLoc | None``: where ``va``'s PTE lives, or
  None.  With ``walk=True`` the lookup is a hardware walk: it may use the
  walk caches and adds the memory references it made to ``walk_refs``.

Faults, migration, unmap and reclaim use only these; they read and write the
PTE itself through :class:`TableMemory`.  A :data:`PteLoc` is ``(pfn,
offset)``: the frame holding the PTE (a page-table page, or a frame of a
program's region) and the byte offset in it.  PTEs are 8 bytes, little
endian:

====== ==========================================================
bit 0  PRESENT: maps a frame
bit 1  SWAP: not present, the page is in swap (no data is kept)
bit 2-3 SIZE: 0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB
bit 4  LEAF: the slot is a page's PTE (set in every value map_page hands out;
       a radix upper-level entry without it points at the next table)
bit 5  ACCESSED: set by the walk model, cleared by reclaim
12-51  PFN: the frame mapped (or, in an upper-level entry, the next table)
52-63  unused (a table may keep its own data there: :meth:`TableMemory.keep`)
====== ==========================================================

Linux's PTE layout is per architecture; this one is x86-like but with an
explicit size field so that non-radix tables can hold any page size.
"""

from __future__ import annotations

import struct
from typing import Protocol

from mmcore.constants import PAGE_SIZE, PAGE_SIZE_ORDERS

PTE_PRESENT = 1 << 0
PTE_SWAP = 1 << 1
PTE_SIZE_SHIFT = 2
PTE_SIZE_MASK = 3 << PTE_SIZE_SHIFT
PTE_LEAF = 1 << 4
PTE_ACCESSED = 1 << 5
PTE_PFN_SHIFT = 12
PTE_PFN_MASK = ((1 << 40) - 1) << PTE_PFN_SHIFT

PteLoc = tuple[int, int]  # (frame pfn, byte offset in that frame)
U64 = struct.Struct("<Q")
SIZE_CODE = {order: code for code, order in enumerate(PAGE_SIZE_ORDERS)}


def make_pte(pfn: int, size_order: int) -> int:
    """A present leaf PTE mapping ``pfn`` as a page of ``size_order``."""
    return (
        PTE_PRESENT | PTE_LEAF | (SIZE_CODE[size_order] << PTE_SIZE_SHIFT) | (pfn << PTE_PFN_SHIFT)
    )


def make_swap_pte(size_order: int) -> int:
    return PTE_SWAP | PTE_LEAF | (SIZE_CODE[size_order] << PTE_SIZE_SHIFT)


def reserved_pte(size_order: int) -> int:
    """The value ``map_page`` leaves in a fresh slot: a leaf, not present."""
    return PTE_LEAF | (SIZE_CODE[size_order] << PTE_SIZE_SHIFT)


def pte_pfn(pte: int) -> int:
    return (pte & PTE_PFN_MASK) >> PTE_PFN_SHIFT


def pte_order(pte: int) -> int:
    return PAGE_SIZE_ORDERS[(pte & PTE_SIZE_MASK) >> PTE_SIZE_SHIFT]


class TableMemory:
    """Byte contents of the frames that hold page-table entries.

    Maps a pfn to ``(buffer, base)``: the frame's 4096 bytes are
    ``buffer[base:base + 4096]`` (a page-table page has its own buffer; a
    region's frames share the region's buffer).

    A table that keeps its own data in bits the PTE format leaves unused
    (bits 52..63: a clustered hash table's tags) names those bits per frame
    with :meth:`keep`: :meth:`read` leaves them out and :meth:`write` leaves
    them as they are, as an OS's PTE accessors would.
    """

    def __init__(self) -> None:
        self.frames: dict[int, tuple[bytearray, int]] = {}
        self.kept: dict[int, int] = {}  # pfn -> bits of its words the accessors leave alone

    def add(self, pfn: int, buf: bytearray, base: int = 0) -> None:
        self.frames[pfn] = (buf, base)

    def remove(self, pfn: int) -> None:
        del self.frames[pfn]
        self.kept.pop(pfn, None)

    def keep(self, pfn: int, bits: int) -> None:
        """Leave ``bits`` of every word of frame ``pfn`` out of reads and writes."""
        self.kept[pfn] = bits

    def read(self, loc: PteLoc) -> int:
        buf, base = self.frames[loc[0]]
        value = U64.unpack_from(buf, base + loc[1])[0]
        if self.kept:
            value &= ~self.kept.get(loc[0], 0)
        return value

    def write(self, loc: PteLoc, value: int) -> None:
        buf, base = self.frames[loc[0]]
        if self.kept:
            bits = self.kept.get(loc[0], 0)
            value = value & ~bits | U64.unpack_from(buf, base + loc[1])[0] & bits
        U64.pack_into(buf, base + loc[1], value)

    @property
    def nbytes(self) -> int:
        return len(self.frames) * PAGE_SIZE


class PageTable(Protocol):
    """What the MM core needs of a page table (see the module docstring)."""

    walk_refs: int  # memory references made by hardware walks so far

    def map_page(self, va: int, size_order: int = 0) -> PteLoc: ...

    def unmap_page(self, va: int) -> None: ...

    def get_pte(self, va: int, walk: bool = False) -> PteLoc | None: ...

    def table_pages(self) -> int:
        """Frames this table occupies (page-table memory metric)."""
        ...
