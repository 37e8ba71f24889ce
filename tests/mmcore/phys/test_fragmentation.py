"""Extfrag and unusable-free indices on crafted free lists, by hand."""

from mmcore.phys.fragmentation import (
    contig_page_info,
    extfrag_for_order,
    fragmentation_index,
    fragmentation_score_node,
    fragmentation_score_wmark,
    unusable_free_index,
)

# 10 order-0, 5 order-1 and 2 order-2 blocks: 10 + 10 + 8 = 28 free pages, 17 blocks
NR_FREE = [10, 5, 2] + [0] * 16


def test_contig_info():
    info = contig_page_info(NR_FREE, 1)
    assert (info.free_pages, info.free_blocks_total, info.free_blocks_suitable) == (28, 17, 9)


def test_fragmentation_index():
    assert fragmentation_index(NR_FREE, 1) == -1000  # the request would succeed
    assert fragmentation_index(NR_FREE, 3) == 1000 - (1000 + 28 * 1000 // 8) // 17  # 736
    assert fragmentation_index(NR_FREE, 3) == 736
    assert fragmentation_index([0] * 19, 3) == 0


def test_unusable_free_index():
    assert unusable_free_index(NR_FREE, 0) == 0
    assert unusable_free_index(NR_FREE, 1) == (28 - 18) * 1000 // 28  # 357
    assert unusable_free_index(NR_FREE, 3) == 1000
    assert unusable_free_index([0] * 19, 0) == 1000


def test_extfrag_for_order_and_scores():
    assert extfrag_for_order(NR_FREE, 2) == (28 - 8) * 100 // 28  # 71
    assert extfrag_for_order([0] * 19, 2) == 0
    assert fragmentation_score_wmark(20, True) == 80
    assert fragmentation_score_wmark(20, False) == 90
    assert fragmentation_score_wmark(100, True) == 5
    nr = [512] + [0] * 18  # all free memory in order-0 blocks: score 100
    assert fragmentation_score_node([(1000, nr), (1000, [0] * 19)], 2000) == 1000 * 100 // 2001
