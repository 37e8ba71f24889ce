"""Invariants read in bulk from the frame arrays (numpy, no per-page Python):
cheap enough to hold after every tick.

- tiling: block heads and their sizes tile memory with no overlap and no gap;
  allocated blocks have an owner, free ones none; pcp frames are order 0;
- free counters: per zone, ``counts`` add up to ``nr_free`` and
  ``free_pages``, and match the BUDDY and PCP frames in the zone;
- merged buddies: no free block has a free buddy of its order in its zone
  (``__free_one_page`` would have merged them);
- pageblocks: every pageblock migratetype is a valid one, every pageblock's
  zone is the zone its pfns lie in, no non-movable page in ZONE_MOVABLE;
- LRU membership: every anon (below 1 GiB) and page-cache page is on an LRU
  list of its kind and node, nothing else is; list and per-zone counts match;
- accounting: kernel pages per source, region pages, swap entries, cached
  pages per file and present pages per process match the frames they own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import MT, NR_MT, ORDER_1G, PAGEBLOCK_ORDER, FrameState, ZoneKind
from mmcore.errors import InvariantError
from mmcore.sources import FIRST_DYNAMIC_OWNER, KERNEL_OWNER, Source
from mmcore.virt.lru import NR_LRU

if TYPE_CHECKING:
    from mmcore.mm import MM
    from mmcore.phys.physmem import Frames


def _fail(msg: str) -> None:
    raise InvariantError(msg)


class IndexView:
    """``view[pfns]``: the frames' indexes (both parts), as int64."""

    def __init__(self, fr: Frames) -> None:
        self.indexes = fr.indexes

    def __getitem__(self, pfns: np.ndarray) -> np.ndarray:
        return self.indexes(pfns)


class FrameView:
    """The frame arrays as numpy views, and the block heads, for one check."""

    def __init__(self, mm: MM) -> None:
        fr = mm.frames
        self.n = fr.n
        self.st, self.owner, self.lru = fr.view("state"), fr.view("owner"), fr.view("lru")
        self.order = fr.view("order")
        self.mt, self.index = fr.view("mt"), IndexView(fr)
        self.heads = np.nonzero(self.st != FrameState.TAIL)[0]
        self.pb_zone = np.frombuffer(fr.pb_zone, dtype=np.uint8)
        self.pb_mt = np.frombuffer(fr.pb_mt, dtype=np.uint8)
        hst = self.st[self.heads]
        self.alloc = self.heads[hst == FrameState.ALLOC]
        self.buddy = self.heads[hst == FrameState.BUDDY]
        self.pcp = self.heads[hst == FrameState.PCP]

    def size(self, pfns: np.ndarray) -> np.ndarray:
        """Pages in the blocks at ``pfns``."""
        return np.int64(1) << self.order[pfns].astype(np.int64)

    def zone_ids(self, pfns: np.ndarray) -> np.ndarray:
        return self.pb_zone[pfns >> PAGEBLOCK_ORDER].astype(np.int64)


def check_tiling(mm: MM, v: FrameView) -> None:
    heads, n = v.heads, v.n
    ends = heads + v.size(heads)
    if not heads.size or heads[0] != 0:
        _fail("frame 0x0 is covered by 0 blocks")
    if ends[-1] > n:
        _fail("a block extends past the last frame")
    nxt = np.append(heads[1:], n)
    bad = np.nonzero(ends != nxt)[0]
    if bad.size:
        i = int(bad[0])
        if ends[i] > nxt[i]:
            _fail(f"frame {int(nxt[i]):#x} is covered by 2 blocks (the block at "
                  f"{int(heads[i]):#x} of order {int(v.order[heads[i]])} overlaps it)")
        _fail(f"frame {int(ends[i]):#x} is covered by 0 blocks")
    if (v.owner[v.alloc] == 0).any():
        _fail(f"allocated block without owner at {int(v.alloc[v.owner[v.alloc] == 0][0]):#x}")
    free = np.concatenate((v.buddy, v.pcp))
    if (v.owner[free] != 0).any():
        _fail(f"free frame with an owner at {int(free[v.owner[free] != 0][0]):#x}")
    if (v.order[v.pcp] != 0).any():
        _fail("pcp frame with order > 0")


def check_free_counters(mm: MM, v: FrameView) -> None:
    nz = len(mm.phys.zones)
    buddy_per_zone = np.bincount(v.zone_ids(v.buddy), minlength=nz)
    pcp_per_zone = np.bincount(v.zone_ids(v.pcp), minlength=nz)
    for z in mm.phys.zones:
        for order, nr in enumerate(z.nr_free):
            if sum(z.counts[order * NR_MT:(order + 1) * NR_MT]) != nr:
                _fail(f"{z.name}: nr_free[{order}] = {nr}, the list counts say "
                      f"{sum(z.counts[order * NR_MT:(order + 1) * NR_MT])}")
        pages = sum(nr << o for o, nr in enumerate(z.nr_free))
        if pages != z.free_pages:
            _fail(f"{z.name}: free_pages = {z.free_pages}, nr_free says {pages}")
        if sum(z.nr_free) != int(buddy_per_zone[z.zid]):
            _fail(f"{z.name}: {int(buddy_per_zone[z.zid])} BUDDY frames, nr_free says "
                  f"{sum(z.nr_free)}: BUDDY frames not all on free lists")
        if sum(map(len, z.pcp)) != int(pcp_per_zone[z.zid]):
            _fail(f"{z.name}: PCP frames not all on pcp lists")


def check_buddies_merged(mm: MM, v: FrameView) -> None:
    b = v.buddy
    order = v.order[b].astype(np.int64)
    low = order < ORDER_1G
    b, order = b[low], order[low]
    buddy = b ^ (np.int64(1) << order)
    ok = buddy < v.n
    b, order, buddy = b[ok], order[ok], buddy[ok]
    bad = ((v.st[buddy] == FrameState.BUDDY) & (v.order[buddy] == order)
           & (v.zone_ids(b) == v.zone_ids(buddy)))
    if bad.any():
        i = int(np.argmax(bad))
        z = mm.phys.zones[int(v.zone_ids(b[i:i + 1])[0])]
        _fail(f"{z.name}: unmerged free buddies {int(b[i]):#x} and {int(buddy[i]):#x} "
              f"of order {int(order[i])}")


def check_pageblocks(mm: MM, v: FrameView) -> None:
    bad = np.nonzero(v.pb_mt >= NR_MT)[0]
    if bad.size:
        pb = int(bad[0])
        _fail(f"pageblock {pb} (pfn {pb << PAGEBLOCK_ORDER:#x}): invalid migratetype "
              f"{int(v.pb_mt[pb])}")
    for z in mm.phys.zones:
        lo, hi = z.start >> PAGEBLOCK_ORDER, -(-z.end >> PAGEBLOCK_ORDER)
        wrong = np.nonzero(v.pb_zone[lo:hi] != z.zid)[0]
        if wrong.size:
            _fail(f"pageblock {lo + int(wrong[0])} lies in {z.name} but is marked as zone "
                  f"{int(v.pb_zone[lo + int(wrong[0])])}")
    movable = np.array([z.kind == ZoneKind.MOVABLE for z in mm.phys.zones])
    a = v.alloc
    bad = movable[v.zone_ids(a)] & (v.mt[a] != MT.MOVABLE)
    if bad.any():
        p = int(a[np.argmax(bad)])
        _fail(f"{mm.phys.zone_of(p).name}: non-movable page {p:#x} (migratetype "
              f"{int(v.mt[p])}) in a movable zone")


def check_lru_membership(mm: MM, v: FrameView) -> None:
    a = v.alloc
    owner = v.owner[a]
    files = np.fromiter(mm.files, dtype=np.int64, count=len(mm.files))
    user = (owner >= FIRST_DYNAMIC_OWNER) & (v.order[a] < ORDER_1G)
    lid = v.lru[a].astype(np.int64) - 1
    missing = user & (lid < 0)
    if missing.any():
        p = int(a[np.argmax(missing)])
        what = "page-cache" if np.isin(v.owner[p], files) else "anon"
        _fail(f"{what} page {p:#x} (owner {int(v.owner[p])}) is on no LRU list")
    listed = lid >= 0
    if (listed & ~user).any():
        p = int(a[np.argmax(listed & ~user)])
        _fail(f"pfn {p:#x} (owner {int(v.owner[p])}) is on an LRU list but is no user page")
    is_file = np.isin(owner, files)
    kind_file = (lid % NR_LRU) >= 2
    wrong = user & (kind_file != is_file)
    nids = np.array([z.nid for z in mm.phys.zones], dtype=np.int64)
    wrong |= user & (lid // NR_LRU != nids[v.zone_ids(a)])
    if wrong.any():
        p = int(a[np.argmax(wrong)])
        _fail(f"pfn {p:#x} is on LRU list {int(v.lru[p]) - 1} of the wrong kind or node")
    if (v.lru[v.buddy] != 0).any() or (v.lru[v.pcp] != 0).any():
        _fail("a free frame is marked on an LRU list")
    lru = mm.lru
    on = a[listed]
    lids = lid[listed]
    entries = np.bincount(lids, minlength=len(lru.count))
    pages = np.bincount(lids, weights=v.size(on), minlength=len(lru.count))
    for i in range(len(lru.count)):
        if entries[i] != lru.entries[i] or pages[i] != lru.count[i]:
            _fail(f"lru {i}: counts ({lru.entries[i]} entries, {lru.count[i]} pages) "
                  f"disagree with the pages on it ({int(entries[i])}, {int(pages[i])})")
    slot = v.zone_ids(on) * NR_LRU + lids % NR_LRU
    n = len(lru.zone_entries)
    entries = np.bincount(slot, minlength=n)
    pages = np.bincount(slot, weights=v.size(on), minlength=n)
    for i in range(n):
        if entries[i] != lru.zone_entries[i] or pages[i] != lru.zone_count[i]:
            _fail(f"zone {i // NR_LRU} lru kind {i % NR_LRU}: per-zone counts "
                  f"({lru.zone_entries[i]} entries, {lru.zone_count[i]} pages) disagree "
                  f"with the lists ({int(entries[i])}, {int(pages[i])})")


def check_accounting(mm: MM, v: FrameView) -> None:
    a = v.alloc
    owned = np.bincount(v.owner[a], weights=v.size(a),
                        minlength=FIRST_DYNAMIC_OWNER).astype(np.int64)
    kern = mm.kernel
    for src in (Source.SLAB_RECLAIMABLE, Source.SLAB_UNMOVABLE, Source.NETBUF):
        if kern.pages[src] != owned[KERNEL_OWNER[src]]:
            _fail(f"kernel accounting: {src.name.lower()} counts {kern.pages[src]} pages, "
                  f"its frames hold {int(owned[KERNEL_OWNER[src]])}")
    if mm.regions.pages() != owned[KERNEL_OWNER[Source.REGION]]:
        _fail(f"region accounting: {mm.regions.pages()} pages counted, frames hold "
              f"{int(owned[KERNEL_OWNER[Source.REGION]])}")
    swapped = sum(p.swapped for p in mm.procs.values())
    if mm.stats.swap_used != swapped:
        _fail(f"swap accounting: swap_used {mm.stats.swap_used}, processes hold {swapped}")
    for f in mm.files.values():
        pages = np.frombuffer(f.pages, dtype=np.int32)
        n = int((pages >= 0).sum())
        if n != f.cached:
            _fail(f"file {f.fid}: cached counts {f.cached} pages, its index holds {n}")
        if f.fid < len(owned) and owned[f.fid] != n:
            _fail(f"file {f.fid}: owns {int(owned[f.fid])} frames, its index holds {n}")
    for p in mm.procs.values():
        have = int(owned[p.owner_id]) if p.owner_id < len(owned) else 0
        if have != p.rss_pages:
            _fail(f"pid {p.pid}: owns {have} pages but maps {p.rss_pages}")


def check_frames(mm: MM) -> FrameView:
    v = FrameView(mm)
    check_tiling(mm, v)
    check_pageblocks(mm, v)  # first: the checks after it read zones from pageblocks
    check_free_counters(mm, v)
    check_buddies_merged(mm, v)
    check_lru_membership(mm, v)
    check_accounting(mm, v)
    return v
