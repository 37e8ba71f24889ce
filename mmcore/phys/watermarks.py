"""Watermark and per-cpu-list sizing arithmetic, as mm/page_alloc.c does it.

``min_free_kbytes`` follows ``calculate_min_free_kbytes`` (int_sqrt of
lowmem_kbytes * 16, clamped to [128, 262144]); per-zone min/low/high follow
``__setup_per_zone_wmarks`` with ``watermark_scale_factor``; pcp batch follows
``zone_batchsize`` and pcp high is ``6 * batch`` (the pre-5.14 rule; newer
kernels tune high dynamically); ``lowmem_reserve`` follows
``setup_per_zone_lowmem_reserve`` with ``sysctl_lowmem_reserve_ratio``
(NORMAL 32, MOVABLE 0).  Differences from Linux: no watermark boost, and
khugepaged's raised min_free_kbytes is not applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import isqrt

from mmcore.constants import LOWMEM_RESERVE_RATIO, PAGE_SIZE, SWAP_CLUSTER_MAX


@dataclass(frozen=True)
class Watermarks:
    min: int
    low: int
    high: int


def min_free_kbytes(lowmem_pages: int) -> int:
    """``calculate_min_free_kbytes`` for ``lowmem_pages`` managed lowmem pages."""
    lowmem_kbytes = lowmem_pages * (PAGE_SIZE >> 10)
    return max(128, min(isqrt(lowmem_kbytes * 16), 262144))


def zone_watermarks(
    managed: int, movable: bool, lowmem_pages: int, min_kbytes: int, scale_factor: int = 10
) -> Watermarks:
    """``__setup_per_zone_wmarks`` for one zone of ``managed`` pages."""
    pages_min = min_kbytes >> (12 - 10)
    tmp = pages_min * managed // lowmem_pages if lowmem_pages else 0
    if movable:
        wmin = max(SWAP_CLUSTER_MAX, min(managed // 1024, 128))
    else:
        wmin = tmp
    step = max(tmp >> 2, managed * scale_factor // 10000)
    return Watermarks(wmin, wmin + step, wmin + 2 * step)


def lowmem_reserve(
    managed: Sequence[int], ratios: Sequence[int] = LOWMEM_RESERVE_RATIO
) -> list[list[int]]:
    """``setup_per_zone_lowmem_reserve`` for one node's zones, lowest first:
    ``reserve[i][j]`` is what zone ``i`` keeps back from an allocation whose
    highest usable zone is ``j`` (the managed pages of zones i+1..j over zone
    i's ratio; none for j <= i, a zero ratio or an empty zone)."""
    n = len(managed)
    out = [[0] * n for _ in range(n)]
    for i in range(n - 1):
        clear = not ratios[i] or not managed[i]
        above = 0
        for j in range(i + 1, n):
            above += managed[j]
            out[i][j] = 0 if clear else above // ratios[i]
    return out


def zone_batchsize(managed: int) -> int:
    """``zone_batchsize``: pages moved between buddy and pcp lists at once."""
    batch = min(managed >> 10, (1 << 20) // PAGE_SIZE) // 4
    batch = max(batch, 1)
    x = batch + batch // 2
    return (1 << (x.bit_length() - 1)) - 1 if x > 1 else 1


def pcp_high(batch: int) -> int:
    return 6 * batch
