"""How an elastic cuckoo table's entries lie in its bucket lines.

Every way's bucket is one 64-byte line; a key (the tag) hashes to one
bucket per way.  Two layouts:

* :data:`CLUSTERED` (ECPT's, ``programs/cuckoo_pt.s``): a bucket is one
  entry holding the PTEs of 8 consecutive pages of one size (page ``k`` of
  the cluster at ``+8k``) under one tag, kept in the PTEs' unused bits
  52..63 (tag bits ``12k .. 12k+11`` in PTE ``k``, ``k`` = 0..3); a PTE
  slot holds a page when its LEAF bit is set.  The table's load counts
  entries (header words 4..6).
* :data:`UNCLUSTERED` (``programs/cuckoo_unclustered_pt.s``): a bucket
  holds four 16-byte entries, tag then PTE of one page each.  The load
  counts pages (header words 0..2).

The tags and the entry bytes mirror the programs exactly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mmcore.constants import PAGE_SHIFT
from mmcore.pagetables.pte import PTE_LEAF, U64

CLUSTER = 8  # pages per clustered entry
TAG_SHIFT = 52  # PTE bits 52..63 carry a clustered entry's tag
TAG_WORDS = 4  # PTEs 0..3 carry it, 12 bits each
MAX_CLUSTER = 1 << 45  # a clustered tag is below 2^48
WORDS = struct.Struct("<8Q")


def page_shift(code: int) -> int:
    return PAGE_SHIFT + 9 * code


@dataclass(frozen=True)
class EntryLayout:
    """Where a layout keeps tags and PTEs (see the module doc)."""

    name: str
    program: str  # the file in programs/
    per_bucket: int  # entries per bucket line
    size: int  # bytes per entry
    load_word: int  # header word of size code 0's load count (3 words, one per code)
    kept_bits: int  # PTE bits the table keeps for itself (TableMemory.keep)

    @property
    def clustered(self) -> bool:
        return self.size == 64

    def key(self, va: int, code: int) -> int:
        """The tag of the entry holding the page of size ``code`` at ``va``."""
        shift = page_shift(code)
        if self.clustered:
            return (va >> shift >> 3 << 3) | (code << 1) | 1
        return ((va >> shift << shift) >> PAGE_SHIFT << 4) | (code << 2) | 2

    def fits(self, va: int, code: int) -> bool:
        """Whether the page's key has room in a tag."""
        return not self.clustered or (va >> page_shift(code) >> 3) < MAX_CLUSTER

    def tag(self, buf: bytes | bytearray, off: int) -> int:
        """The tag of the entry at ``off`` (0: empty)."""
        if not self.clustered:
            return U64.unpack_from(buf, off)[0]
        words = WORDS.unpack_from(buf, off)
        return sum((words[k] >> TAG_SHIFT) << (12 * k) for k in range(TAG_WORDS))

    def pages(self, buf: bytes | bytearray, off: int) -> list[int]:
        """The va of every page the entry at ``off`` holds."""
        tag = self.tag(buf, off)
        if not tag:
            return []
        if not self.clustered:
            return [(tag >> 4) << PAGE_SHIFT]
        shift = page_shift((tag >> 1) & 3)
        words = WORDS.unpack_from(buf, off)
        return [((tag >> 3 << 3) | k) << shift for k in range(CLUSTER) if words[k] & PTE_LEAF]

    def code(self, tag: int) -> int:
        return (tag >> 1) & 3 if self.clustered else (tag >> 2) & 3

    def entry(self, tag: int, pte: int, va: int) -> bytes:
        """A fresh entry of ``tag`` holding the one page at ``va`` with ``pte``."""
        if not self.clustered:
            return struct.pack("<QQ", tag, pte)
        words = [((tag >> (12 * k)) & 0xFFF) << TAG_SHIFT if k < TAG_WORDS else 0
                 for k in range(CLUSTER)]
        words[(va >> page_shift(self.code(tag))) & 7] |= pte
        return WORDS.pack(*words)


CLUSTERED = EntryLayout("ecpt", "cuckoo_pt.s", per_bucket=1, size=64, load_word=4,
                        kept_bits=((1 << 12) - 1) << TAG_SHIFT)
UNCLUSTERED = EntryLayout("ecpt_unclustered", "cuckoo_unclustered_pt.s", per_bucket=4, size=16,
                          load_word=0, kept_bits=0)
