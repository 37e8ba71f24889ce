"""Tests of mmcore.studies.ptworkload: the access streams and rebuild pricing."""

import random
from collections import Counter

import pytest

from mmcore.pagetables.latency import CacheLevel, HierarchyConfig
from mmcore.studies.ptworkload import addresses, price_lines

PAGES = [(0x10000000 + i * 4096, 4096) for i in range(100)]


def test_scan_walks_every_line_in_address_order():
    vas = list(addresses(PAGES[::-1], "scan", 130, random.Random(1)))
    assert vas[:3] == [0x10000000, 0x10000040, 0x10000080]
    assert vas[64] == 0x10001000


def test_chase_visits_every_page_once_per_round():
    vas = list(addresses(PAGES, "chase", 200, random.Random(1)))
    assert Counter(v >> 12 for v in vas[:100]) == Counter(v >> 12 for v, _ in PAGES)
    assert [v >> 12 for v in vas[:100]] == [v >> 12 for v in vas[100:]]
    assert [v >> 12 for v in vas[:100]] != sorted(v >> 12 for v in vas[:100])


def test_zipf_favours_few_pages_and_uniform_does_not():
    top = Counter(v >> 12 for v in addresses(PAGES, "zipf", 5000, random.Random(2)))
    flat = Counter(v >> 12 for v in addresses(PAGES, "uniform", 5000, random.Random(2)))
    assert top.most_common(1)[0][1] > 4 * flat.most_common(1)[0][1]


def test_unknown_stream():
    with pytest.raises(ValueError, match="unknown stream"):
        list(addresses(PAGES, "zigzag", 1, random.Random(0)))


def test_rebuild_lines_are_priced_through_a_cold_hierarchy():
    cfg = HierarchyConfig((CacheLevel("L1", 4 * 64, 3),), 100)
    assert price_lines([range(10, 14), range(10, 12)], cfg) == 4 * 100 + 2 * 3
