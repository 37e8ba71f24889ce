"""Fragmentation indices as mm/vmstat.c and mm/compaction.c compute them.

``fill_contig_page_info``, ``__fragmentation_index`` (extfrag_index),
``unusable_free_index`` (unusable_index) and ``extfrag_for_order`` /
``fragmentation_score_*`` for proactive compaction.  The kernel prints the
indices as ``index / 1000`` with three decimals; these functions return the
integer thousandths exactly as the kernel computes them.  Inputs are the
zone's ``nr_free`` per order (buddy lists only, pcp pages excluded, as in
the kernel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mmcore.constants import MAX_ORDER, ORDER_2M


@dataclass(frozen=True)
class ContigInfo:
    free_pages: int
    free_blocks_total: int
    free_blocks_suitable: int


def contig_page_info(nr_free: Sequence[int], suitable_order: int) -> ContigInfo:
    free_pages = total = suitable = 0
    for order, blocks in enumerate(nr_free):
        total += blocks
        free_pages += blocks << order
        if order >= suitable_order:
            suitable += blocks << (order - suitable_order)
    return ContigInfo(free_pages, total, suitable)


def fragmentation_index(nr_free: Sequence[int], order: int) -> int:
    """``__fragmentation_index``: -1000 if the request would succeed, else
    0 (fails for lack of memory) .. 1000 (fails for fragmentation)."""
    info = contig_page_info(nr_free, order)
    if order > MAX_ORDER or not info.free_blocks_total:
        return 0
    if info.free_blocks_suitable:
        return -1000
    requested = 1 << order
    return 1000 - (1000 + info.free_pages * 1000 // requested) // info.free_blocks_total


def unusable_free_index(nr_free: Sequence[int], order: int) -> int:
    """``unusable_free_index``: thousandths of free memory unusable for ``order``."""
    info = contig_page_info(nr_free, order)
    if info.free_pages == 0:
        return 1000
    return (info.free_pages - (info.free_blocks_suitable << order)) * 1000 // info.free_pages


def extfrag_for_order(nr_free: Sequence[int], order: int) -> int:
    """Percentage of free memory not in blocks of at least ``order``."""
    info = contig_page_info(nr_free, order)
    if info.free_pages == 0:
        return 0
    return (info.free_pages - (info.free_blocks_suitable << order)) * 100 // info.free_pages


def fragmentation_score_zone(nr_free: Sequence[int]) -> int:
    return extfrag_for_order(nr_free, ORDER_2M)  # COMPACTION_HPAGE_ORDER


def fragmentation_score_node(zones: Sequence[tuple[int, Sequence[int]]], node_pages: int) -> int:
    """Sum of ``fragmentation_score_zone_weighted`` over (present_pages, nr_free)."""
    return sum(pages * fragmentation_score_zone(nr) // (node_pages + 1) for pages, nr in zones)


def fragmentation_score_wmark(proactiveness: int, low: bool) -> int:
    wmark_low = max(100 - proactiveness, 5)
    return wmark_low if low else min(wmark_low + 10, 100)
