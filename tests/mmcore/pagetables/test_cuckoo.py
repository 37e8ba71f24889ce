"""The elastic cuckoo page table (programs/cuckoo_pt.s with
mmcore.pagetables.cuckoo): verified, map / unmap / lookup against a dict
through displacements and resizes, identical on both engines, and the
cuckoo walk caches pruning only ways that cannot hold the page."""

import functools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmcore.constants import ORDER_1G, ORDER_4K, PAGE_SIZE
from mmcore.mm import MM
from mmcore.pagetables.cuckoo import WAYS, CuckooPageTable, bucket, tag_of
from mmcore.pagetables.cwc import SHIFT_2M
from mmcore.pagetables.loading import PtPrograms
from mmcore.pagetables.pte import make_pte
from mmcore.phys.physmem import MachineSpec, NodeSpec
from tests.conftest import PROGRAMS
from tests.mmcore.pagetables.test_pt_programs import OPS, Model, apply, check_all, random_ops

BASE = 1 << 32


@functools.cache
def programs() -> PtPrograms:
    return PtPrograms.from_file(PROGRAMS / "cuckoo_pt.s")


def new_table(engine: str = "interp", frames: int = 1 << 15, **kw) -> CuckooPageTable:
    return CuckooPageTable(MM(MachineSpec((NodeSpec(frames),))), programs(), engine=engine, **kw)


@pytest.mark.parametrize("pages", [1, 2, 5, 64, 1000])
def test_verified_for_every_region_size(pages):
    assert set(programs().for_region(pages * PAGE_SIZE)) == {"pt_map", "pt_unmap", "pt_lookup"}


def ways_of(pt: CuckooPageTable, va: int) -> tuple[int, int, bool]:
    """(size code, way, in the old table) of the slot holding va's PTE."""
    r0 = pt._run("pt_lookup", va)
    assert r0, f"{va:#x} not found"
    way, off = pt._at(r0, pt.addrs["pt_lookup"])
    return pt._where(way, off & -64)


def test_many_4k_pages_resize_and_stay_found_during_migration():
    pt, model = new_table(), {}
    rng = random.Random(5)
    seen_migrating = 0
    for i in range(2500):
        va = BASE + rng.randrange(1 << 14) * PAGE_SIZE
        if va in model and rng.random() < 0.25:
            pt.unmap_page(va)
            del model[va]
            continue
        loc = pt.map_page(va)
        model[va] = make_pte(1000 + i, ORDER_4K)
        pt.mm.mem.write(loc, model[va])
        if pt.regs[0][2] and i % 50 == 0:  # a resize is in progress: both tables in use
            seen_migrating += 1
            for v, pte in model.items():
                assert pt.mm.mem.read(pt.get_pte(v + 8)) == pte
    assert pt.resizes >= 4 and pt.migrated > 1000 and seen_migrating > 0
    assert pt.kicks > 0 and pt.copies > 0 and pt.moved_lines
    for v, pte in model.items():
        assert pt.mm.mem.read(pt.get_pte(v, walk=True)) == pte
    assert pt._count(0) == len(model)
    # every key sits in a bucket the hash gives it (the host's mirror of the program)
    for v in model:
        code, way, old = ways_of(pt, v)
        nb, base = (pt.regs[0][2], pt.regs[0][3]) if old else (pt.regs[0][0], pt.regs[0][1])
        at = pt._at(pt._run("pt_lookup", v), pt.addrs["pt_lookup"])
        assert at is not None and at[0] == way
        assert (at[1] - base) // 64 == bucket(tag_of(v >> 12, 0), way, nb)


def test_engines_agree_through_resizes():
    tables = [new_table(engine, seed=3) for engine in ("interp", "jit")]
    models = [Model(), Model()]
    for step, op in enumerate(random_ops(11, 700)):
        answers = [apply(pt, m, op, 100 + step) for pt, m in zip(tables, models, strict=True)]
        assert answers[0] == answers[1], f"step {step}: {op}"
        assert [w.buf for w in tables[0].ways] == [w.buf for w in tables[1].ways], \
            f"step {step}: {op}"
    assert tables[0].resizes > 0 and tables[0].walk_refs > 0
    for pt, m in zip(tables, models, strict=True):
        check_all(pt, m)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, max_size=150))
def test_semantics_against_a_dict(ops):
    pt, model = new_table(), Model()
    for step, op in enumerate(ops):
        apply(pt, model, op, 1 + step)
    check_all(pt, model)
    pt.destroy()
    assert pt.mm.regions.pages() == 0


def test_walk_tables_stay_exact():
    pt, model = new_table(), Model()
    for step, op in enumerate(random_ops(4, 500)):
        apply(pt, model, op, 1 + step)
    for va in model.pages:
        code, way, _ = ways_of(pt, va)
        assert (code, way) in pt.cwc.pmd_cwt[va >> SHIFT_2M]
    assert sum(sum(c.values()) for c in pt.cwc.pud_cwt.values()) == len(model.pages)


def test_walk_caches_prune_ways_and_sizes():
    pt = new_table()
    huge = BASE + (8 << 30)
    pt.map_page(huge, ORDER_1G)
    for i in range(64):
        pt.map_page(BASE + i * PAGE_SIZE)
    pt.walk_cache_on = False
    pt.get_pte(huge + 12345, walk=True)
    assert len(pt.last_walk) == 2 * WAYS  # every way of both sizes with pages
    pt.walk_cache_on = True
    pt.get_pte(huge + 4096, walk=True)  # fills the walk caches
    loc = pt.get_pte(huge + 8192, walk=True)
    assert loc is not None and len(pt.last_walk) == 1  # the 1 GiB page's way only
    assert pt.cwc.hits[0] >= 1
    assert {step for _, step in pt.last_walk} == {2}  # after the (free) table registers


def test_unmapping_everything_empties_the_table():
    pt = new_table()
    vas = [BASE + i * 7 * PAGE_SIZE for i in range(400)]
    for va in vas:
        pt.map_page(va)
    for va in vas:
        pt.unmap_page(va)
    assert all(pt._count(c) == 0 for c in range(3))
    assert not pt.cwc.pmd_cwt and not pt.cwc.pud_cwt
    assert all(pt.get_pte(va) is None for va in vas)


def test_tables_shrink_when_pages_go_and_stay_exact():
    pt, model = new_table(), {}
    rng = random.Random(8)
    vas = [BASE + i * PAGE_SIZE for i in rng.sample(range(1 << 14), 1500)]
    for i, va in enumerate(vas):
        model[va] = make_pte(50 + i, ORDER_4K)
        pt.mm.mem.write(pt.map_page(va), model[va])
    grown = pt.regs[0][0]
    for step, va in enumerate(vas[:1450]):
        pt.unmap_page(va)
        del model[va]
        if step % 100 == 0:
            for v, pte in model.items():
                assert pt.mm.mem.read(pt.get_pte(v + 16)) == pte
    for va, pte in model.items():  # maps finish any downsizing in progress
        pt.mm.mem.write(pt.map_page(va), pte)
    assert pt.shrinks >= 2 and pt.regs[0][0] <= grown // 4
    assert pt._count(0) == len(model)
    assert sum(sum(c.values()) for c in pt.cwc.pud_cwt.values()) == len(model)
    for va, pte in model.items():
        assert pt.mm.mem.read(pt.get_pte(va, walk=True)) == pte
    for va in vas[:1450]:
        assert pt.get_pte(va) is None


def test_every_way_has_its_own_region():
    pt = new_table()
    for i in range(300):
        pt.map_page(BASE + i * PAGE_SIZE)
    assert len(pt.ways) == WAYS and len({w.start for w in pt.ways}) == WAYS
    assert pt.table_pages() == sum(w.npages for w in pt.ways)
    held = {}
    for i in range(300):
        pfn, _ = pt.get_pte(BASE + i * PAGE_SIZE)
        way = [k for k, w in enumerate(pt.ways) if w.start <= pfn < w.start + w.npages]
        assert len(way) == 1
        held[way[0]] = held.get(way[0], 0) + 1
    assert set(held) == set(range(WAYS))  # keys spread over the three ways
    pt.destroy()
    assert pt.mm.regions.pages() == 0
