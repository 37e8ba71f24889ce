"""What a snapshot says about huge pages: tainted pageblocks, blocks an
ideal compaction could free, free-block histograms (``bpfvm mm analyze``).

Pages are classed by :func:`mmcore.phys.snapshot.classify` (its
docstring has the rules).  The counts, all over the snapshot's frames:

``pages``           frames of each class.
``pageblocks``      2 MiB pageblocks (512 frames, aligned by pfn) holding at
                    least one frame that is not a hole.
``blocks_with_class``  per class, pageblocks holding at least one page of it.
``tainted``         ``slab``, ``pgtable``, ``reserved``, ``kernel_other``:
                    pageblocks holding at least one page of that unmovable
                    class; ``any_unmovable``: of any of the four.
``blocks_with_hole``   pageblocks (counted in ``pageblocks``) with a hole.
``obtainable``      ``2m``: pageblocks with no unmovable page and no hole,
                    the blocks an ideal compaction (which can move every
                    anon and file page) could turn into 2 MiB pages; ``1g``:
                    1 GiB-aligned ranges (262,144 frames, all inside the
                    snapshot) whose 512 pageblocks are all obtainable.
``obtainable_at_once``  how many of them can be free at the same time: an
                    ideal compaction needs somewhere to put the pages it
                    moves, so ``min(obtainable, free pages // block size)``
                    (emptying k clean blocks is possible exactly when the
                    free pages number at least k blocks' worth).
``free_now``        pageblocks (``2m``) and 1 GiB ranges (``1g``) that are
                    wholly free now, without compaction.
``free_runs``       free pages split into aligned power-of-two blocks of
                    order 0..10 (Linux's MAX_PAGE_ORDER), each as large as
                    its alignment and the run of free pages allow: what the
                    buddy lists would hold if every free neighbour merged.
``buddyinfo``       the kernel's own histogram from /proc/buddyinfo (per
                    node and zone, orders 0..), read just after the flags.
``flagless``        the flagless part of ``kernel_other`` (see :func:`flagless`).
``kernel_counters`` /proc/vmstat's page counters and the per-cpu lists'
                    free pages (zoneinfo ``count:``), for comparison with
                    ``pages``; they are read just after the flags, so a busy
                    machine drifts a little between the two.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mmcore.phys.snapshot import CLASS_NAMES, UNMOVABLE, PageClass, Snapshot

BLOCK = 512  # frames per 2 MiB pageblock
GIGA = 512 * 512  # frames per 1 GiB
MAX_PAGE_ORDER = 10
UNMOVABLE_KEYS = ("slab", "pgtable", "reserved", "kernel_other")
COUNTERS = ("nr_free_pages", "nr_slab_reclaimable", "nr_slab_unreclaimable",
            "nr_page_table_pages", "nr_anon_pages", "nr_file_pages", "nr_kernel_stack")


# Block map codes (one per pageblock, for the plot): the most telling class.
class BlockKind:
    RESERVED, PGTABLE, SLAB, KERNEL_OTHER, HOLE, FREE, ANON, FILE, MIXED = range(9)
    NAMES = ("reserved", "pgtable", "slab", "kernel_other", "hole", "free",
             "mostly anon", "mostly file", "free + movable")


def _padded(arr: np.ndarray, pfn0: int, align: int, fill: Any) -> tuple[np.ndarray, int]:
    """``arr`` padded with ``fill`` front and back so that index 0 sits at a
    multiple of ``align`` pfns and the length is a multiple of it; also the
    pfn of index 0."""
    front = pfn0 % align
    total = front + arr.size
    back = (-total) % align
    if front or back:
        arr = np.concatenate([np.full(front, fill, arr.dtype), arr,
                              np.full(back, fill, arr.dtype)])
    return arr, pfn0 - front


def analyze(snap: Snapshot) -> dict[str, Any]:
    """Every count of the module docstring, as a JSON-ready dict."""
    classes = snap.classes()
    result, _ = analyze_classes(classes, snap.pfn0)
    result = {"source": snap.source, "origin": snap.origin, "kernel": snap.kernel,
              "note": snap.note, **result}
    result["flagless"] = flagless(snap.flags, classes, snap.pfn0)
    result["buddyinfo"] = parse_buddyinfo(snap.texts.get("buddyinfo", ""))
    result["kernel_counters"] = kernel_counters(snap.texts.get("vmstat", ""),
                                                snap.texts.get("zoneinfo", ""))
    return result


def analyze_classes(classes: np.ndarray, pfn0: int = 0) -> tuple[dict[str, Any], np.ndarray]:
    """The counts of a class array whose first frame is ``pfn0``, and the
    block map (a :class:`BlockKind` per pageblock, for plots)."""
    padded, base = _padded(classes.astype(np.uint8, copy=False), pfn0, BLOCK, PageClass.HOLE)
    blocks = padded.reshape(-1, BLOCK)
    nclass = len(CLASS_NAMES)
    # per block, pages of each class
    counts = np.zeros((blocks.shape[0], nclass), dtype=np.int32)
    for c in range(nclass):
        counts[:, c] = (blocks == c).sum(axis=1)
    present = counts[:, PageClass.HOLE] < BLOCK
    has = counts > 0
    unmov = np.zeros(blocks.shape[0], dtype=bool)
    for c in UNMOVABLE:
        unmov |= has[:, c]
    hole = has[:, PageClass.HOLE]
    clean = present & ~unmov & ~hole
    wholly_free = counts[:, PageClass.FREE] == BLOCK

    pages = {name: int((classes == c).sum()) for c, name in enumerate(CLASS_NAMES)}
    with_class = {name: int((present & has[:, c]).sum())
                  for c, name in enumerate(CLASS_NAMES) if name != "hole"}
    tainted = {name: with_class[name] for name in UNMOVABLE_KEYS}
    tainted["any_unmovable"] = int((present & unmov).sum())

    # 1 GiB ranges: only those wholly inside the snapshot
    first_block = base // BLOCK
    lo_g = -(-pfn0 // GIGA)
    hi_g = (pfn0 + classes.size) // GIGA
    giga_clean = giga_free = gigablocks = 0
    for g in range(lo_g, hi_g):
        sl = slice(g * 512 - first_block, (g + 1) * 512 - first_block)
        giga_clean += bool(clean[sl].all())
        giga_free += bool(wholly_free[sl].all())
    for g in range(pfn0 // GIGA, -(-(pfn0 + classes.size) // GIGA)):
        sl = slice(max(g * 512 - first_block, 0), max((g + 1) * 512 - first_block, 0))
        gigablocks += bool(present[sl].any())

    free_pages = pages["free"]
    obtainable = {"2m": int(clean.sum()), "1g": int(giga_clean)}
    result = {
        "frames": int(classes.size),
        "pfn0": int(pfn0),
        "pages": pages,
        "pageblocks": int(present.sum()),
        "gigablocks": int(gigablocks),
        "blocks_with_class": with_class,
        "tainted": tainted,
        "blocks_with_hole": int((present & hole).sum()),
        "obtainable": obtainable,
        "obtainable_at_once": {"2m": min(obtainable["2m"], free_pages // BLOCK),
                               "1g": min(obtainable["1g"], free_pages // GIGA)},
        "free_now": {"2m": int((present & wholly_free).sum()), "1g": int(giga_free)},
        "free_runs": free_runs(classes == PageClass.FREE, pfn0),
    }
    return result, block_map(counts, present)


def flagless(flags: np.ndarray, classes: np.ndarray, pfn0: int = 0) -> dict[str, int]:
    """The part of ``kernel_other`` that has no flag at all (the per-cpu
    lists' free pages look like that): its ``pages``, and the pageblocks
    whose only unmovable pages are flagless (``blocks_only_flagless``), so
    that ``any_unmovable - blocks_only_flagless`` is the count were every
    flagless page free."""
    fl = (flags == 0) & (classes == PageClass.KERNEL_OTHER)
    other_unmov = np.zeros(classes.shape, dtype=bool)
    for c in UNMOVABLE:
        other_unmov |= classes == c
    other_unmov &= ~fl
    a, _ = _padded(fl, pfn0, BLOCK, False)
    b, _ = _padded(other_unmov, pfn0, BLOCK, False)
    only = a.reshape(-1, BLOCK).any(axis=1) & ~b.reshape(-1, BLOCK).any(axis=1)
    return {"pages": int(fl.sum()), "blocks_only_flagless": int(only.sum())}


def block_map(counts: np.ndarray, present: np.ndarray) -> np.ndarray:
    """One :class:`BlockKind` per pageblock: the first unmovable class it
    holds (reserved, pgtable, slab, kernel_other), else hole, else free /
    mostly anon / mostly file / a mix of free and movable."""
    kind = np.full(counts.shape[0], BlockKind.MIXED, dtype=np.uint8)
    anon, file, free = (counts[:, PageClass.ANON], counts[:, PageClass.FILE],
                        counts[:, PageClass.FREE])
    kind[(anon > file) & (anon > free)] = BlockKind.ANON
    kind[(file >= anon) & (file > free)] = BlockKind.FILE
    kind[free == BLOCK] = BlockKind.FREE
    kind[counts[:, PageClass.HOLE] > 0] = BlockKind.HOLE
    for cls, k in ((PageClass.KERNEL_OTHER, BlockKind.KERNEL_OTHER),
                   (PageClass.SLAB, BlockKind.SLAB), (PageClass.PGTABLE, BlockKind.PGTABLE),
                   (PageClass.RESERVED, BlockKind.RESERVED)):
        kind[counts[:, cls] > 0] = k
    kind[~present] = BlockKind.HOLE
    return kind


def free_runs(free: np.ndarray, pfn0: int = 0) -> list[int]:
    """Counts of free blocks of order 0..MAX_PAGE_ORDER when every run of
    free frames is cut into the largest aligned power-of-two pieces."""
    span = 1 << MAX_PAGE_ORDER
    padded, _ = _padded(free.astype(bool, copy=False), pfn0, span, False)
    out = []
    parent_full = None
    for order in range(MAX_PAGE_ORDER, -1, -1):
        full = padded.reshape(-1, 1 << order).all(axis=1)
        if parent_full is None:
            out.append(int(full.sum()))
        else:
            out.append(int((full & ~np.repeat(parent_full, 2)).sum()))
        parent_full = full
    return out[::-1]


_BUDDY = re.compile(r"^Node\s+(\d+),\s*zone\s+(\S+)\s+((?:\d+\s*)+)$")


def parse_buddyinfo(text: str) -> dict[str, list[int]]:
    """``{"node 0 Normal": [free blocks of order 0, 1, ...]}`` from /proc/buddyinfo."""
    out = {}
    for line in text.splitlines():
        m = _BUDDY.match(line.strip())
        if m:
            out[f"node {m.group(1)} {m.group(2)}"] = [int(x) for x in m.group(3).split()]
    return out


def kernel_counters(vmstat: str, zoneinfo: str) -> dict[str, int]:
    """Page counters from /proc/vmstat, plus ``pcp_free_pages`` (the per-cpu
    lists' free pages, summed over zoneinfo's ``count:`` lines)."""
    out: dict[str, int] = {}
    for line in vmstat.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in COUNTERS and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    pcp = [int(m) for m in re.findall(r"^\s+count:\s+(\d+)\s*$", zoneinfo, re.M)]
    if pcp:
        out["pcp_free_pages"] = sum(pcp)
    return out
