"""The learned index of ``programs/lvm_pt.s``: its layout in the root region
and its arithmetic, exactly as the programs compute it.

A root model (lo, slope, shift, err) predicts which leaf holds a key; the
leaf is then the last whose first key (``bounds``) is at or below the key,
searched among the predicted leaf +- (err + 1).  A leaf model (lo, slope,
err, slots) predicts a slot; the key is within ``err`` slots of it, probed
in the order :func:`probe_order` gives.  Keys are 4 KiB page numbers.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

LINE = 64
HDR_LEAVES = 24
ROOT = struct.Struct("<QQQQ")  # at 32: lo, slope (8.24), shift, err
ROOT_OFF = 32
BOUNDS_OFF = 64
LMAX = 1024  # leaves
RECS_OFF = BOUNDS_OFF + 8 * LMAX
REC = struct.Struct("<QIIIIQ")  # lo, slope, err, slots, region, base
META_END = RECS_OFF + REC.size * LMAX  # 41024: leaf slots may start here
SLOT = struct.Struct("<QQ")  # tag, PTE
ERR_MAX = 4  # a leaf's error bound: the programs probe at most 2 * ERR_MAX + 1 slots
U32 = (1 << 32) - 1
LEAF_SLOPE_MASK = 0xFFFFF
ROOT_SLOPE_MASK = (1 << 34) - 1
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
        """The linear model of leaf index over ``bounds`` (ascending, bounds[0] = 0)."""
        n = len(bounds)
        if n <= 1:
            return cls()
        lo = bounds[1] if n > 2 else bounds[-1]
        rng = bounds[-1] - lo
        shift = max(0, rng.bit_length() - 28)
        slope = min(((n - 1) << 24) // max(rng >> shift, 1), ROOT_SLOPE_MASK)
        model = cls(lo, slope, shift, 0)
        err = max(abs(model.predict(b) - i) for i, b in enumerate(bounds))
        return cls(lo, slope, shift, min(err, 1023))

    def predict(self, k: int) -> int:
        d = min((k - self.lo if k >= self.lo else 0) >> (self.shift & 63), ROOT_UNITS)
        return (d * (self.slope & ROOT_SLOPE_MASK)) >> 24


def find_leaf(root: RootModel, bounds: list[int], k: int) -> int:
    """The leaf the programs choose for key ``k`` (their bounded binary search)."""
    n = min(len(bounds), LMAX)
    p, e = root.predict(k), (root.err & 1023) + 1
    lo = p - e if p > e else 0
    hi = min(p + e, n - 1)
    lo = min(lo, hi)
    for _ in range(12):
        if lo >= hi:
            break
        mid = ((lo + hi + 1) >> 1) & (LMAX - 1)
        if bounds[mid] > k:
            hi = mid - 1
        else:
            lo = mid
    return lo


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
