"""Tests of mmcore.pagetables.latency (cache hierarchy, walk cycles) and
mmcore.pagetables.walkrec (dependency steps of a walk's loads)."""

import pytest

from bpfvm.stdhelpers import standard_helpers
from mmcore.hooks.specs import PT_LOOKUP
from mmcore.pagetables.latency import (
    CacheHierarchy,
    CacheLevel,
    HierarchyConfig,
    dedupe,
    percentile,
)
from mmcore.pagetables.loading import with_region_size
from mmcore.pagetables.walkrec import WalkRecorder
from tests.mmcore.machines import pt_sections

SMALL = HierarchyConfig((CacheLevel("L1", 2 * 64, 4), CacheLevel("L2", 4 * 64, 12)), 100)


def test_a_line_is_cached_after_its_first_access():
    h = CacheHierarchy(SMALL)
    assert h.access(7) == 100
    assert h.access(7) == 4
    h.access(8)
    h.access(9)  # L1 holds two lines: 7 is now only in L2
    assert h.access(7) == 12
    assert h.hits == [1, 1, 3]  # L1, L2, DRAM


def test_lru_order_is_kept_by_hits():
    h = CacheHierarchy(SMALL)
    for line in (1, 2, 1, 3):  # 2 is the least recently used in L1
        h.access(line)
    assert h.access(1) == 4 and h.access(2) == 12


def test_parallel_references_overlap_and_dependent_ones_add_up():
    h = CacheHierarchy(SMALL)
    assert h.walk([(1, 1), (2, 1), (3, 1)]) == 100  # three ways at once
    h2 = CacheHierarchy(SMALL)
    assert h2.walk([(1, 1), (2, 2), (3, 3), (4, 4)]) == 400  # a radix chain
    assert h2.walk([(3, 1), (4, 2)]) == 8  # both in L1 now


def test_default_hierarchy_is_the_stated_server():
    cfg = HierarchyConfig()
    assert [(lvl.size, lvl.latency) for lvl in cfg.levels] == [
        (48 << 10, 5), (2 << 20, 14), (32 << 20, 50)]
    assert cfg.dram == 250


def test_dedupe_keeps_the_earliest_step_of_a_line():
    assert dedupe([(5, 2), (6, 1), (5, 1), (6, 3)]) == [(5, 1), (6, 1)]


@pytest.mark.parametrize("values, q, want", [
    ([], 0.99, 0.0), ([3], 0.99, 3.0), (list(range(1, 101)), 0.99, 99.0),
    (list(range(1, 101)), 0.5, 50.0), ([5, 1, 9], 1.0, 9.0)])
def test_percentile_is_nearest_rank(values, q, want):
    assert percentile(values, q) == want


CHASE = """\
.hook pt_map
    r9 = 4096 ll
    r0 = 0
    exit
.hook pt_unmap
    r9 = 4096 ll
    r0 = 0
    exit
.hook pt_lookup
    r9 = 4096 ll
    r6 = *(u64 *)(r1 + 0)       # region (a ctx load: not a reference)
    r2 = *(u64 *)(r6 + 0)       # step 1: fixed address
    r3 = *(u64 *)(r6 + 128)     # step 1: fixed address, another line
    r2 &= 1023
    r4 = r6
    r4 += r2
    r5 = *(u64 *)(r4 + 0)       # step 2: address from the first load
    *(u64 *)(r10 - 8) = r5      # spilled ...
    r5 = *(u64 *)(r10 - 8)      # ... and filled: still step 2's value
    r5 &= 1023
    r0 = r6
    r0 += r5
    r0 = *(u64 *)(r0 + 0)       # step 3
    r0 = r6
    r0 += 2048
    if r3 == 0 goto out         # only control depends on r3: no step
    r0 += 64
out:
    exit
"""


def test_recorder_finds_dependent_and_independent_loads():
    prog = with_region_size(pt_sections(CHASE, "c.s")["pt_lookup"], 4096)
    rec = WalkRecorder(prog, standard_helpers())
    buf = bytearray(4096)
    buf[0:8] = (512).to_bytes(8, "little")
    buf[512:520] = (960).to_bytes(8, "little")
    addr = rec.watch(buf)
    ctx = bytearray(PT_LOOKUP.ctx_size)
    ctx[0:8] = addr.to_bytes(8, "little")
    assert rec.run(ctx) == addr + 2048
    assert rec.refs == [(0, 1), (2, 1), (8, 2), (15, 3)]
    assert rec.ret_step == 0  # the returned pointer needs no load
    rec.run(ctx)
    assert rec.refs == [(0, 1), (2, 1), (8, 2), (15, 3)]  # state reset per run


TWO = """
.hook pt_map
    r9 = 4096 ll
    r0 = 0
    exit
.hook pt_unmap
    r9 = 4096 ll
    r0 = 0
    exit
.hook pt_lookup
    r9 = 4096 ll
    r6 = *(u64 *)(r1 + 0)       # region
    r7 = *(u64 *)(r1 + 32)      # region1
    r2 = *(u64 *)(r6 + 64)      # region 0, line 1, step 1
    r2 &= 1023
    r7 += r2
    r0 = *(u64 *)(r7 + 0)       # region 1, line of r2, step 2
    r0 = 0
    exit
"""


def test_recorder_names_the_region_of_each_load():
    prog = with_region_size(pt_sections(TWO, "two.s")["pt_lookup"], 4096)
    rec = WalkRecorder(prog, standard_helpers())
    bufs = [bytearray(4096), bytearray(4096)]
    bufs[0][64:72] = (640).to_bytes(8, "little")
    addrs = rec.watch_all(bufs)
    ctx = bytearray(PT_LOOKUP.ctx_size)
    ctx[0:8] = addrs[0].to_bytes(8, "little")
    ctx[32:40] = addrs[1].to_bytes(8, "little")
    rec.run(ctx)
    assert rec.region_refs() == [(0, 1, 1), (1, 10, 2)]
    assert rec.refs == [(1, 1)]  # the first region's loads only
