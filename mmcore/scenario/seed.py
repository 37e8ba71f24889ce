"""Start a simulated machine from a snapshot of a real one.

:func:`seed` takes a fresh MM whose frames match a snapshot's (one node,
frame ``i`` of the machine = frame ``pfn0 + i`` of the snapshot) and the
class of every frame (:func:`mmcore.phys.snapshot.classify`), and puts each
recorded page where it was:

* ``free`` frames go back to the buddy allocator, in the largest aligned
  blocks their runs allow (merging as Linux's boot-time freeing does);
* ``slab``, ``pgtable``, ``reserved``, ``kernel_other`` and ``hole`` frames
  become permanent unmovable kernel pages (owner: unmovable slab; they never
  expire, are never reclaimed and compaction cannot move them);
* ``anon`` and ``file`` frames become clean page-cache pages of one
  recorded file (movable, on the inactive file LRU: reclaim drops them and
  compaction migrates them).

Each pageblock's migratetype becomes UNMOVABLE if it holds a recorded
unmovable page and MOVABLE otherwise (/proc/kpageflags does not record the
pageblock types).  Simplifications, beside those two: no process owns the
recorded anonymous pages (they are reclaimable as page cache is, without
swap); holes are allocated rather than left out of the zone; a snapshot of
several NUMA nodes is seeded as one node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import MT, PAGEBLOCK_PAGES, FrameState
from mmcore.errors import ScenarioError
from mmcore.phys.hugetlb import HUGETLB_OWNER
from mmcore.phys.snapshot import PageClass
from mmcore.sources import KERNEL_OWNER, Source
from mmcore.virt.lru import LruList, lid_of

if TYPE_CHECKING:
    from mmcore.mm import MM

UNMOVABLE_CLASSES = (PageClass.SLAB, PageClass.PGTABLE, PageClass.RESERVED,
                     PageClass.KERNEL_OTHER, PageClass.HOLE)
KERNEL = KERNEL_OWNER[Source.SLAB_UNMOVABLE]


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` placed: pages per class name, and the recorded file."""

    pages: dict[str, int]
    file_pages: int
    unmovable_pageblocks: int
    file_id: int = -1  # owner id of the recorded page cache (-1: none)


def seed(mm: MM, classes: np.ndarray) -> Seeded:
    """Place the recorded classes on ``mm``'s frames (see the module doc)."""
    phys, fr, pa = mm.phys, mm.frames, mm.pa
    n = fr.n
    if len(phys.nodes) != 1 or len(classes) != n:
        raise ScenarioError(f"a snapshot of {len(classes):,} frames seeds a one-node machine "
                            f"of as many frames, not {len(phys.nodes)} node(s) of {n:,}")
    c = np.asarray(classes, dtype=np.uint8)
    unmov = np.isin(c, np.array(UNMOVABLE_CLASSES, dtype=np.uint8))
    movable = (c == PageClass.ANON) | (c == PageClass.FILE)
    free = ~(unmov | movable)
    pa.drain_all()
    for z in phys.zones:
        if z.end > z.start:
            pa.take_range(z, z.start, z.end)
    # pageblock types: unmovable where a recorded unmovable page sits
    pb_unmov = unmov[: (n // PAGEBLOCK_PAGES) * PAGEBLOCK_PAGES].reshape(-1, PAGEBLOCK_PAGES) \
        .any(axis=1)
    pb = np.frombuffer(fr.pb_mt, dtype=np.uint8)
    pb[: len(pb_unmov)] = np.where(pb_unmov, MT.UNMOVABLE, MT.MOVABLE)
    # allocated frames: order-0 blocks with their owner
    used = ~free
    for name, value in (("state", FrameState.ALLOC), ("order", 0)):
        fr.view(name)[used] = value
    fr.view("mt")[unmov] = MT.UNMOVABLE
    fr.view("mt")[movable] = MT.MOVABLE
    fr.view("owner")[unmov] = KERNEL
    fr.set_indexes(np.flatnonzero(unmov), 0)
    mm.kernel.pages[Source.SLAB_UNMOVABLE] += int(unmov.sum())
    # the recorded page cache (and anonymous memory): one clean file
    pfns = np.nonzero(movable)[0]
    fid = -1
    if len(pfns):
        f = mm.new_file(len(pfns), 0)
        fid = f.fid
        fr.view("owner")[pfns] = f.fid
        fr.set_indexes(pfns, np.arange(len(pfns)))
        f.pages = type(f.pages)("i", pfns.astype(np.int32).tobytes())
        f.cached = len(pfns)
        lid = lid_of(0, LruList.INACTIVE_FILE)
        add = mm.lru.add
        for pfn in pfns.tolist():
            add(pfn, lid)
    # free runs back to the buddy allocator
    edges = np.diff(np.concatenate(([0], free.view(np.int8), [0])))
    for lo, hi in zip(np.nonzero(edges == 1)[0].tolist(), np.nonzero(edges == -1)[0].tolist(),
                      strict=True):
        pa.free_range(lo, hi)
    counts = {cls.name.lower(): int((c == cls).sum()) for cls in PageClass}
    return Seeded(counts, len(pfns), int(pb_unmov.sum()), fid)



def seed_snapshot(mm: MM, path: str) -> Seeded:
    """:func:`seed` ``mm`` with the classes of the snapshot file at ``path``."""
    from mmcore.phys.snapshot import load

    snap = load(path)
    return seed(mm, snap.classes()[: mm.frames.n])


def classes_of(mm: MM, recorded: np.ndarray | None = None, recorded_file: int = -1
               ) -> np.ndarray:
    """The :class:`~mmcore.phys.snapshot.PageClass` of every frame of a
    simulated machine, as a snapshot of it would record them: free (buddy
    or per-cpu), anon (process pages and hugetlb pool pages), file (page cache), slab (slab and
    network buffers), pgtable (page tables and page-table regions) -- so
    ``analyze`` reads a simulated machine as it reads a real one.  With
    ``recorded`` (the classes a machine was seeded with), pages still held
    from the seeding keep their recorded class."""
    fr = mm.frames
    state = fr.view("state")
    order = fr.view("order").astype(np.int64)
    owner = fr.view("owner")
    heads = np.nonzero(state != FrameState.TAIL)[0]
    head_class = np.full(len(heads), PageClass.KERNEL_OTHER, dtype=np.uint8)
    o = owner[heads]
    head_class[state[heads] != FrameState.ALLOC] = PageClass.FREE
    alloc = state[heads] == FrameState.ALLOC
    for source, cls in ((Source.SLAB_RECLAIMABLE, PageClass.SLAB),
                        (Source.SLAB_UNMOVABLE, PageClass.SLAB),
                        (Source.NETBUF, PageClass.KERNEL_OTHER),
                        (Source.PAGETABLE, PageClass.PGTABLE),
                        (Source.REGION, PageClass.PGTABLE)):
        head_class[alloc & (o == KERNEL_OWNER[source])] = cls
    files = np.array(sorted(mm.files), dtype=np.int64)
    procs = np.array(sorted(mm.procs), dtype=np.int64)
    head_class[alloc & np.isin(o, files)] = PageClass.FILE
    head_class[alloc & np.isin(o, procs)] = PageClass.ANON
    head_class[alloc & (o == HUGETLB_OWNER)] = PageClass.ANON  # KPF_HUGE reads as anon
    if recorded is not None:  # seeded kernel pages (index 0) keep their recorded class
        keep = alloc & (o == KERNEL) & (fr.indexes(heads) == 0)
        keep |= alloc & (o == recorded_file)
        head_class[keep] = np.asarray(recorded, dtype=np.uint8)[heads[keep]]
    sizes = np.left_shift(1, order[heads])
    return np.repeat(head_class, sizes)[: fr.n]
