"""Physical memory: NUMA nodes, zones, frames and pageblocks.

Per-frame state is a struct of compact arrays (numpy buffers committed by
the OS page by page on first write, read and written through memoryviews),
never one Python object per page; numpy views over the same buffers serve
bulk queries (metrics, invariants, compaction scans).  Frames of one node are contiguous; each node
has a NORMAL zone at its bottom and a MOVABLE zone at its top, their boundary
a pageblock-aligned pfn that may move at run time.

Differences from Linux: there is no struct page; ``nxt``/``prv`` serve both
as buddy free-list links and as LRU links (like ``page->lru``); there are no
holes, no DMA/DMA32/HIGHMEM zones, and node distances come from the machine
spec instead of ACPI SLIT.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import numpy as np

from mmcore.constants import (
    MT,
    NR_MT,
    NR_ZONE_KINDS,
    PAGEBLOCK_ORDER,
    PAGEBLOCK_PAGES,
    ZoneKind,
)
from mmcore.phys.native import ZoneArrays

LOCAL_DISTANCE, REMOTE_DISTANCE = 10, 20


@dataclass(frozen=True)
class NodeSpec:
    """One NUMA node: ``pages`` frames, the top ``movable_pages`` of them in
    its MOVABLE zone.  ``tier`` is a free-form label (e.g. "dram", "cxl")."""

    pages: int
    movable_pages: int = 0
    tier: str = "dram"


@dataclass(frozen=True)
class MachineSpec:
    nodes: tuple[NodeSpec, ...]
    distance: tuple[tuple[int, ...], ...] = ()
    watermark_scale_factor: int = 10
    snapshot: str = ""  # a snapshot file whose recorded pages the machine starts with

    def distances(self) -> tuple[tuple[int, ...], ...]:
        if self.distance:
            return self.distance
        n = len(self.nodes)
        return tuple(
            tuple(LOCAL_DISTANCE if i == j else REMOTE_DISTANCE for j in range(n)) for i in range(n)
        )

    @property
    def total_pages(self) -> int:
        return sum(n.pages for n in self.nodes)


_FIELDS = (  # name, element type: what it holds
    ("state", np.uint8),  # FrameState, meaningful at heads
    ("order", np.uint8),  # block order, at heads
    ("mt", np.uint8),  # allocation migratetype (ALLOC) / free list (BUDDY)
    ("lru", np.uint8),  # 0: on no LRU list, else LRU list id + 1
    ("ref", np.uint8),  # PG_referenced for page-cache pages
    ("owner", np.int32),  # owner id, 0 when free
    ("index_lo", np.uint32),  # vpn / file index / handle: its low 32 bits ...
    ("index_hi", np.int8),  # ... and the rest, signed (0 for most indexes: never written)
    ("nxt", np.int32),  # list links (buddy or LRU); pfns < 2**31 (MAX_FRAMES)
    ("prv", np.int32),
)
MAX_FRAMES = 1 << 31  # 8 TiB: pfns and list links fit the int32 link arrays
INDEX_BITS = 40  # an index is a signed 40-bit number (a vpn of a 48-bit va has 36 bits)
LO_MASK = (1 << 32) - 1


def lazy_zeros(n: int, dtype: type) -> np.ndarray:
    """``n`` zeros in an anonymous mapping of 4 KiB pages, each committed on
    its first write (``np.zeros`` asks for transparent huge pages, which
    would commit 2 MiB around every block head written)."""
    size = n * np.dtype(dtype).itemsize
    return np.frombuffer(mmap.mmap(-1, max(size, 1)), dtype=dtype, count=n)


class Frames:
    """Struct-of-arrays per-frame state for ``n`` frames.

    Each array is a zero-filled numpy buffer (:func:`lazy_zeros`: the OS
    commits a page of it on its first write, so memory never touched --
    tails of free blocks, frames no allocation reached -- costs no resident
    memory) that the MM core reads and writes element by element through a
    memoryview (Python ints, about as fast as a ``bytearray``); :meth:`view`
    gives the numpy array itself for bulk queries.  Widths: pfns (and so
    the ``nxt``/``prv`` links) stay below ``MAX_FRAMES``, owner ids are
    counters of owners created.  An index (a vpn has 36 bits, a slab
    handle is negative) is split in two arrays, ``index_lo`` (its low 32
    bits) and ``index_hi`` (the rest, a signed byte): the high part is
    written only when it or the value there is not 0, so a machine whose
    indexes fit 32 bits never commits a page of it.  :meth:`get_index`
    and :meth:`set_index` read and write one index, :meth:`indexes` many;
    a hot path may write ``index_lo`` alone where ``value >> 32`` and
    ``index_hi[pfn]`` are both 0.
    """

    def __init__(self, n: int) -> None:
        if n > MAX_FRAMES:
            raise ValueError(f"{n} frames: at most {MAX_FRAMES} (list links are 32-bit)")
        self.n = n
        self._arrays = {name: lazy_zeros(n, dtype) for name, dtype in _FIELDS}
        mv = {name: memoryview(arr) for name, arr in self._arrays.items()}
        self.state, self.order, self.mt = mv["state"], mv["order"], mv["mt"]
        self.lru, self.ref, self.owner = mv["lru"], mv["ref"], mv["owner"]
        self.index_lo, self.index_hi = mv["index_lo"], mv["index_hi"]
        self.nxt, self.prv = mv["nxt"], mv["prv"]
        npb = (n + PAGEBLOCK_PAGES - 1) >> PAGEBLOCK_ORDER
        self.pb_mt = bytearray([MT.MOVABLE]) * npb  # pageblock migratetype
        self.pb_zone = bytearray(npb)  # global zone id of each pageblock

    def get_index(self, pfn: int) -> int:
        return self.index_lo[pfn] | self.index_hi[pfn] << 32

    def set_index(self, pfn: int, value: int) -> None:
        hi = value >> 32
        if not -(1 << (INDEX_BITS - 33)) <= hi < 1 << (INDEX_BITS - 33):
            raise ValueError(f"index {value:#x} of pfn {pfn:#x}: more than {INDEX_BITS} bits")
        self.index_lo[pfn] = value & LO_MASK
        if hi or self.index_hi[pfn]:
            self.index_hi[pfn] = hi

    def indexes(self, pfns: np.ndarray) -> np.ndarray:
        """The indexes of the frames ``pfns`` (an integer array), as int64."""
        lo = self._arrays["index_lo"][pfns].astype(np.int64)
        return lo | self._arrays["index_hi"][pfns].astype(np.int64) << 32

    def set_indexes(self, pfns: np.ndarray, values: np.ndarray) -> None:
        """:meth:`set_index` for the frames ``pfns`` (an integer array)."""
        values = np.asarray(values, dtype=np.int64)
        hi = values >> 32
        if (hi < -(1 << (INDEX_BITS - 33))).any() or (hi >= 1 << (INDEX_BITS - 33)).any():
            raise ValueError(f"an index of more than {INDEX_BITS} bits")
        self._arrays["index_lo"][pfns] = values & LO_MASK
        self._arrays["index_hi"][pfns] = hi

    def view(self, name: str) -> np.ndarray:
        """A zero-copy numpy view of one per-frame or per-pageblock array."""
        arr = self._arrays.get(name)
        return arr if arr is not None else np.frombuffer(getattr(self, name), dtype=np.uint8)

    def nbytes(self) -> int:
        """Bytes the arrays span (resident only where written)."""
        return sum(a.nbytes for a in self._arrays.values()) + len(self.pb_mt) + len(self.pb_zone)


def pageblocks_covered(heads: np.ndarray, orders: np.ndarray, npb: int) -> np.ndarray:
    """Boolean per pageblock of ``npb``: overlapped by one of the blocks at
    ``heads`` (pfns relative to the first pageblock) of ``orders``."""
    heads = heads.astype(np.int64)
    first = heads >> PAGEBLOCK_ORDER
    last = np.minimum((heads + (np.int64(1) << orders.astype(np.int64)) - 1) >> PAGEBLOCK_ORDER,
                      npb - 1)
    starts = np.bincount(first, minlength=npb + 1)
    stops = np.bincount(last + 1, minlength=npb + 1)
    return np.cumsum(starts[:npb] - stops[:npb]) > 0


class Zone:
    """One zone: its pfn range, buddy free lists, pcp lists and watermarks.

    Free lists are intrusive: ``heads[order * NR_MT + mt]`` is the first free
    block's pfn (-1 when empty) and frames link through ``Frames.nxt/prv``.
    """

    __slots__ = (
        "zid", "nid", "kind", "start", "end", "heads", "counts", "nr_free", "desc", "_lists",
        "free_pages",
        "pcp", "wmark_min", "wmark_low", "wmark_high", "batch", "pcp_high", "lowmem_reserve",
        "low_for",
    )  # fmt: skip

    def __init__(self, zid: int, nid: int, kind: ZoneKind, start: int, end: int,
                 frames: Frames) -> None:
        self.zid, self.nid, self.kind = zid, nid, kind
        self.start, self.end = start, end
        # free-list heads and block counts per (order, migratetype) at
        # order * NR_MT + mt, blocks per order: int64 arrays read and written
        # as Python ints; ``desc`` addresses them and ``frames``' arrays for
        # the compiled list steps (mmcore.phys.native)
        self._lists = ZoneArrays(frames._arrays)
        self.heads, self.counts, self.nr_free = (
            self._lists.heads, self._lists.counts, self._lists.nr_free)
        self.desc = self._lists.desc
        self.free_pages = 0  # pages on the buddy free lists (pcp excluded, as NR_FREE_PAGES)
        self.pcp: list[list[int]] = [[] for _ in range(NR_MT)]
        self.wmark_min = self.wmark_low = self.wmark_high = 0
        self.batch, self.pcp_high = 1, 6
        # pages kept back from allocations whose highest zone is ZoneKind k
        self.lowmem_reserve = [0] * NR_ZONE_KINDS
        # wmark_low + the reserve an order-0 allocation of each migratetype must
        # leave (the fast path's whole watermark test, kept by setup_watermarks)
        self.low_for = [0] * NR_MT

    @property
    def managed(self) -> int:
        return self.end - self.start

    @property
    def name(self) -> str:
        return f"node{self.nid}/{self.kind.name.lower()}"

    def pcp_pages(self) -> int:
        return sum(len(lst) for lst in self.pcp)

    def __repr__(self) -> str:
        return f"Zone({self.name}, {self.start:#x}-{self.end:#x}, free={self.free_pages})"


class Node:
    def __init__(self, nid: int, start: int, end: int, tier: str) -> None:
        self.nid, self.start, self.end, self.tier = nid, start, end, tier
        self.zones: list[Zone] = []

    @property
    def normal(self) -> Zone:
        return self.zones[ZoneKind.NORMAL]

    @property
    def movable(self) -> Zone:
        return self.zones[ZoneKind.MOVABLE]


class PhysMem:
    """Nodes, zones and frames of a machine built from a :class:`MachineSpec`."""

    def __init__(self, spec: MachineSpec) -> None:
        self.spec = spec
        for i, ns in enumerate(spec.nodes):
            if ns.pages % PAGEBLOCK_PAGES or ns.movable_pages % PAGEBLOCK_PAGES:
                raise ValueError(f"node {i}: sizes must be whole pageblocks (2 MiB)")
            if not 0 <= ns.movable_pages < ns.pages:
                raise ValueError(f"node {i}: movable zone must be smaller than the node")
        self.frames = Frames(spec.total_pages)
        self.distance = spec.distances()
        self.nodes: list[Node] = []
        self.zones: list[Zone] = []
        start = 0
        for nid, ns in enumerate(spec.nodes):
            node = Node(nid, start, start + ns.pages, ns.tier)
            boundary = node.end - ns.movable_pages
            for kind, (lo, hi) in zip(
                ZoneKind, ((start, boundary), (boundary, node.end)), strict=True
            ):
                zone = Zone(len(self.zones), nid, kind, lo, hi, self.frames)
                node.zones.append(zone)
                self.zones.append(zone)
                self.frames.pb_zone[lo >> PAGEBLOCK_ORDER : hi >> PAGEBLOCK_ORDER] = bytes(
                    [zone.zid]
                ) * ((hi - lo) >> PAGEBLOCK_ORDER)
            self.nodes.append(node)
            start = node.end

    def zone_of(self, pfn: int) -> Zone:
        return self.zones[self.frames.pb_zone[pfn >> PAGEBLOCK_ORDER]]

    def node_order(self, nid: int) -> list[int]:
        """Nodes by distance from ``nid`` (ties by id), as build_zonelists."""
        return sorted(range(len(self.nodes)), key=lambda n: (self.distance[nid][n], n))

    def zonelist(self, nid: int, movable: bool) -> list[Zone]:
        """Zones an allocation from ``nid`` may use, in preference order:
        node order, and within a node the highest usable zone first."""
        out: list[Zone] = []
        for n in self.node_order(nid):
            node = self.nodes[n]
            out.extend([node.movable, node.normal] if movable else [node.normal])
        return out
