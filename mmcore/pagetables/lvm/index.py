"""The learned index of ``programs/lvm_pt.s``: its layout in the root region
and its arithmetic, exactly as the programs compute it.

Three levels of small linear models.  The root model (lo, slope, shift,
err) predicts which internal node holds a key; the node is then the last
whose first key (the node bounds) is at or below the key, searched among
the predicted node +- (err + 1).  The node's model, of the same form,
predicts a leaf among the node's leaves, found the same way in the leaf
bounds.  A leaf model (lo, slope, err, slots) predicts a slot; the key is
within ``err`` slots of it, probed in the order :func:`probe_order` gives.
Keys are 4 KiB page numbers.

:func:`group` cuts the leaves into nodes: a run of leaves whose bounds one
line fits within :data:`NODE_ERR` (at most :data:`NODE_LEAVES` leaves) is
a node; there are at most :data:`NMAX`.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

LINE = 64
HDR_LEAVES = 24
ROOT = struct.Struct("<QQQQ")  # at 32: lo, slope (8.24), shift, err
ROOT_OFF = 32
NODES_OFF = 64  # u64: internal nodes
NMAX = 32  # internal nodes
NODE_BOUNDS_OFF = 128
NODE_RECS_OFF = NODE_BOUNDS_OFF + 8 * NMAX  # 384
NODE = struct.Struct("<QQIIII")  # lo, slope, shift, err, first leaf, leaves
BOUNDS_OFF = NODE_RECS_OFF + NODE.size * NMAX  # 1408
LMAX = 1024  # leaves
RECS_OFF = BOUNDS_OFF + 8 * LMAX  # 9600
REC = struct.Struct("<QIIIIQ")  # lo, slope, err, slots, region, base
META_END = RECS_OFF + REC.size * LMAX  # 42368: leaf slots may start here
NODE_ERR = 2  # a node's error bound, in leaves, when the leaves allow
NODE_LEAVES = 64  # leaves per node at most
SLOT = struct.Struct("<QQ")  # tag, PTE
ERR_MAX = 4  # a leaf's error bound: the programs probe at most 2 * ERR_MAX + 1 slots
U32 = (1 << 32) - 1
LEAF_SLOPE_MASK = 0xFFFFF
ROOT_SLOPE_MASK = (1 << 34) - 1
TRIM = 2  # bounds a root fit may leave out at each end
ROOT_UNITS = (1 << 28) - 1  # the root's input, (k - lo) >> shift, is clamped to this


def tag_of(vpn: int, code: int) -> int:
    return (vpn << 4) | (code << 2) | 2


@dataclass(frozen=True)
class RootModel:
    lo: int = 0
    slope: int = 0
    shift: int = 0
    err: int = 0

    @classmethod
    def fit(cls, bounds: list[int]) -> RootModel:
        """The linear model of leaf index over ``bounds`` (ascending, bounds[0] = 0)
        with the smallest error bound among lines through two bounds near the
        ends (up to :data:`TRIM` left out at each end: far outliers, such as
        a stack above the heap, would otherwise flatten the line)."""
        n = len(bounds)
        if n <= 2:
            return cls(0, 0, 0, n - 1 if n else 0)
        best = None
        for tl in range(min(TRIM, n - 2) + 1):
            for tr in range(min(TRIM, n - 2 - tl) + 1):
                ia, ib = 1 + tl, n - 1 - tr
                if ib <= ia:
                    continue
                model = cls._through(bounds, ia, ib)
                err = model.error(bounds, best[0] if best else 1 << 20)
                if best is None or err < best[0]:
                    best = (err, model)
                if best[0] <= 1:
                    return cls(best[1].lo, best[1].slope, best[1].shift, best[0])
        assert best is not None
        err, model = best
        return cls(model.lo, model.slope, model.shift, min(err, 1023))

    @classmethod
    def _through(cls, bounds: list[int], ia: int, ib: int) -> RootModel:
        a, b = bounds[ia], bounds[ib]
        shift = max(0, (b - a).bit_length() - 28)
        slope = min(((ib - ia) << 24) // max((b - a) >> shift, 1), ROOT_SLOPE_MASK)
        lo = a - ((((ia << 24) // slope) << shift) if slope else 0)
        return cls(max(lo, 0), slope, shift, 0)

    def error(self, bounds: list[int], cap: int) -> int:
        """The largest distance between a bound's leaf and its clamped
        prediction (or a value above ``cap`` once it is exceeded)."""
        last, worst = len(bounds) - 1, 0
        for i, b in enumerate(bounds):
            worst = max(worst, abs(min(self.predict(b), last) - i))
            if worst > cap:
                break
        return worst

    def predict(self, k: int) -> int:
        d = min((k - self.lo if k >= self.lo else 0) >> (self.shift & 63), ROOT_UNITS)
        return (d * (self.slope & ROOT_SLOPE_MASK)) >> 24


@dataclass(frozen=True)
class Node:
    """An internal node: its model over leaves ``first`` .. ``first + count - 1``."""

    model: RootModel
    first: int
    count: int

    def record(self) -> bytes:
        m = self.model
        return NODE.pack(m.lo, m.slope, m.shift, m.err, self.first, self.count)


def _search(bounds: list[int], k: int, p: int, err: int, first: int, last: int,
            rounds: int, mask: int) -> int:
    """The programs' bounded binary search: the last of ``bounds[first..last]``
    at or below ``k`` among ``p`` +- (err + 1)."""
    p, e = min(p, last), err + 1
    lo = max(p - e, first) if p > e else first
    hi = min(p + e, last)
    lo = min(lo, hi)
    for _ in range(rounds):
        if lo >= hi:
            break
        mid = ((lo + hi + 1) >> 1) & mask
        if bounds[mid] > k:
            hi = mid - 1
        else:
            lo = mid
    return lo


def find_node(root: RootModel, node_bounds: list[int], k: int) -> int:
    """The internal node the programs choose for key ``k``."""
    n = min(len(node_bounds), NMAX)
    return _search(node_bounds, k, root.predict(k), root.err & (NMAX - 1), 0, n - 1, 6,
                   NMAX - 1)


def find_leaf(root: RootModel, nodes: list[Node], bounds: list[int], k: int) -> int:
    """The leaf the programs choose for key ``k`` (root, node, then leaf bounds)."""
    node = nodes[find_node(root, [bounds[n.first] if i else 0 for i, n in enumerate(nodes)], k)]
    first = node.first & (LMAX - 1)
    last = min(first + min(node.count, LMAX) - 1, LMAX - 1)
    return _search(bounds, k, first + node.model.predict(k), node.model.err & 1023, first,
                   last, 12, LMAX - 1)


def fit_node(bounds: list[int], first: int, count: int) -> Node:
    """The node over leaves ``first`` .. ``first + count - 1`` (its model
    predicts a leaf counted from ``first``)."""
    return Node(RootModel.fit(bounds[first:first + count]), first, count)


def group(bounds: list[int], first: int = 0, count: int | None = None,
          tol: int = NODE_ERR) -> list[Node]:
    """Nodes over ``count`` leaves from ``first``: one when a line fits them
    within ``tol`` and they are at most :data:`NODE_LEAVES`, else the halves
    grouped in turn."""
    count = len(bounds) - first if count is None else count
    node = fit_node(bounds, first, count)
    if count <= 1 or (node.model.err <= tol and count <= NODE_LEAVES):
        return [node]
    half = count // 2
    return group(bounds, first, half, tol) + group(bounds, first + half, count - half, tol)


def group_all(bounds: list[int]) -> list[Node]:
    """Nodes over every leaf, at most :data:`NMAX` of them (the error
    tolerance doubles until they are few enough)."""
    tol = NODE_ERR
    while True:
        nodes = group(bounds, tol=tol)
        if len(nodes) <= NMAX:
            return nodes
        tol *= 2


def true_leaf(bounds: list[int], k: int) -> int:
    """The leaf that owns key ``k``: the last whose bound is at or below it."""
    return max(bisect.bisect_right(bounds, k) - 1, 0)


@dataclass
class LeafModel:
    lo: int
    slope: int
    err: int
    slots: int
    region: int = 0
    base: int = 0  # offset of the slot array in its region

    def predict(self, k: int) -> int:
        d = min(k - self.lo if k >= self.lo else 0, U32)
        return min((d * (self.slope & LEAF_SLOPE_MASK)) >> 16, self.slots - 1)

    def probes(self, k: int, err: int | None = None) -> list[int]:
        return probe_order(self.predict(k), min(self.err if err is None else err, ERR_MAX),
                           self.slots)

    def record(self) -> bytes:
        return REC.pack(self.lo, self.slope, self.err, self.slots, self.region, self.base)

    @property
    def nbytes(self) -> int:
        return -(-self.slots * SLOT.size // LINE) * LINE


def probe_order(pos: int, err: int, slots: int) -> list[int]:
    """Slots probed for a key predicted at ``pos``: pos, pos+1, pos-1, pos+2, ..."""
    out = []
    for i in range(2 * ERR_MAX + 1):
        j = (i + 1) >> 1
        if j > err:
            break
        s = pos + j if i & 1 else pos - j
        if 0 <= s < slots:
            out.append(s)
    return out
