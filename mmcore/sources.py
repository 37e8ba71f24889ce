"""Allocation sources: who asks for memory, with which migratetype, which LRU
list its pages join and which allocation flags it uses.

Kernel sources own their pages under fixed owner ids (``KERNEL_OWNER``);
processes and files get their own owner ids from the MM core.  Differences
from Linux: page-cache pages are always MOVABLE (Linux uses the mapping's
gfp mask, movable for nearly every file system); slab pages are either
whole-page allocations without objects or the slabs of the object caches
(:mod:`mmcore.phys.slab`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from mmcore.constants import ALLOC_DEFAULT, MT, AllocFlag


class Source(IntEnum):
    ANON = 0
    FILE = 1
    SLAB_RECLAIMABLE = 2
    SLAB_UNMOVABLE = 3
    NETBUF = 4
    PAGETABLE = 5
    REGION = 6


class LruKind(IntEnum):
    NONE = 0
    ANON = 1
    FILE = 2


@dataclass(frozen=True)
class SourceInfo:
    name: str
    mt: int  # an MT value, stored as a plain int for the hot path
    lru: LruKind
    flags: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "mt", int(self.mt))
        object.__setattr__(self, "flags", int(self.flags))


SOURCES: tuple[SourceInfo, ...] = (
    SourceInfo("anon", MT.MOVABLE, LruKind.ANON, ALLOC_DEFAULT),
    SourceInfo("file", MT.MOVABLE, LruKind.FILE, ALLOC_DEFAULT),
    SourceInfo("slab_reclaimable", MT.RECLAIMABLE, LruKind.NONE, ALLOC_DEFAULT),
    SourceInfo("slab_unmovable", MT.UNMOVABLE, LruKind.NONE, ALLOC_DEFAULT),
    SourceInfo("netbuf", MT.UNMOVABLE, LruKind.NONE, AllocFlag.KSWAPD),  # GFP_ATOMIC-like
    SourceInfo("pagetable", MT.UNMOVABLE, LruKind.NONE, ALLOC_DEFAULT),
    SourceInfo("region", MT.UNMOVABLE, LruKind.NONE, ALLOC_DEFAULT),
)

KERNEL_OWNER = {s: 1 + s for s in Source if s not in (Source.ANON, Source.FILE)}
FIRST_DYNAMIC_OWNER = 16
