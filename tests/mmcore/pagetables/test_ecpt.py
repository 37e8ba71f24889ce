"""The elastic cuckoo page table (programs/cuckoo_pt.s, clustered entries,
and programs/cuckoo_unclustered_pt.s, with mmcore.pagetables.ecpt):
verified, map / unmap / lookup against a dict through displacements and
resizes, identical on both engines, the cuckoo walk caches pruning only
ways that cannot hold the page, and clustered entries holding 8
consecutive pages in one line under a tag the MM's PTE writes keep."""

import functools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmcore.constants import ORDER_1G, ORDER_2M, ORDER_4K, PAGE_SIZE
from mmcore.errors import PageTableError
from mmcore.mm import MM
from mmcore.pagetables.ecpt.cwc import SHIFT_2M
from mmcore.pagetables.ecpt.entries import CLUSTERED, TAG_SHIFT, UNCLUSTERED, EntryLayout
from mmcore.pagetables.ecpt.table import WAYS, CuckooPageTable, bucket
from mmcore.pagetables.loading import PtPrograms
from mmcore.pagetables.pte import U64, make_pte
from mmcore.phys.physmem import MachineSpec, NodeSpec
from tests.conftest import PROGRAMS
from tests.mmcore.pagetables.test_pt_programs import OPS, Model, apply, check_all, random_ops

BASE = 1 << 32


LAYOUTS = (CLUSTERED, UNCLUSTERED)


@functools.cache
def programs(layout: EntryLayout = CLUSTERED) -> PtPrograms:
    return PtPrograms.from_file(PROGRAMS / layout.program)


def new_table(engine: str = "interp", frames: int = 1 << 15, layout: EntryLayout = CLUSTERED,
              **kw) -> CuckooPageTable:
    return CuckooPageTable(MM(MachineSpec((NodeSpec(frames),))), programs(layout),
                           engine=engine, layout=layout, **kw)


@pytest.fixture(params=LAYOUTS, ids=lambda lay: lay.name)
def layout(request) -> EntryLayout:
    return request.param


@pytest.mark.parametrize("pages", [1, 2, 5, 64, 1000])
def test_verified_for_every_region_size(layout, pages):
    got = programs(layout).for_region(pages * PAGE_SIZE)
    assert set(got) == {"pt_map", "pt_unmap", "pt_lookup"}


def ways_of(pt: CuckooPageTable, va: int) -> tuple[int, int, bool]:
    """(size code, way, in the old table) of the slot holding va's PTE."""
    r0 = pt._run("pt_lookup", va)
    assert r0, f"{va:#x} not found"
    way, off = pt._at(r0, pt.addrs["pt_lookup"])
    return pt._where(way, off & -64)


def test_many_4k_pages_resize_and_stay_found_during_migration(layout):
    pt, model = new_table(layout=layout), {}
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
        assert (at[1] - base) // 64 == bucket(layout.key(v, 0), way, nb)


def test_engines_agree_through_resizes(layout):
    tables = [new_table(engine, seed=3, layout=layout) for engine in ("interp", "jit")]
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
@given(ops=st.lists(OPS, max_size=150), clustered=st.booleans())
def test_semantics_against_a_dict(ops, clustered):
    pt, model = new_table(layout=CLUSTERED if clustered else UNCLUSTERED), Model()
    for step, op in enumerate(ops):
        apply(pt, model, op, 1 + step)
    check_all(pt, model)
    pt.destroy()
    assert pt.mm.regions.pages() == 0


def test_walk_tables_stay_exact(layout):
    pt, model = new_table(layout=layout), Model()
    for step, op in enumerate(random_ops(4, 500)):
        apply(pt, model, op, 1 + step)
    for va in model.pages:
        code, way, _ = ways_of(pt, va)
        assert (code, way) in pt.cwc.pmd_cwt[va >> SHIFT_2M]
    assert sum(sum(c.values()) for c in pt.cwc.pud_cwt.values()) == len(model.pages)


def test_walk_caches_prune_ways_and_sizes(layout):
    pt = new_table(layout=layout)
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


def test_unmapping_everything_empties_the_table(layout):
    pt = new_table(layout=layout)
    vas = [BASE + i * 7 * PAGE_SIZE for i in range(400)]
    for va in vas:
        pt.map_page(va)
    for va in vas:
        pt.unmap_page(va)
    assert all(pt._count(c) == 0 and pt._load(c) == 0 for c in range(3))
    assert not pt.cwc.pmd_cwt and not pt.cwc.pud_cwt
    assert all(pt.get_pte(va) is None for va in vas)


def test_tables_shrink_when_pages_go_and_stay_exact(layout):
    pt, model = new_table(layout=layout), {}
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
    # a clustered table has a quarter of the entries per bucket: its rows take longer to move
    assert pt.shrinks >= (2 if layout is UNCLUSTERED else 1)
    assert pt.regs[0][0] <= grown // (4 if layout is UNCLUSTERED else 2)
    assert pt._count(0) == len(model)
    assert sum(sum(c.values()) for c in pt.cwc.pud_cwt.values()) == len(model)
    for va, pte in model.items():
        assert pt.mm.mem.read(pt.get_pte(va, walk=True)) == pte
    for va in vas[:1450]:
        assert pt.get_pte(va) is None


def test_every_way_has_its_own_region(layout):
    pt = new_table(layout=layout)
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


def test_consecutive_pages_share_one_clustered_entry():
    pt = new_table()
    for order, step in ((ORDER_4K, PAGE_SIZE), (ORDER_2M, 2 << 20)):
        base = BASE + (64 << 30) * (1 + order)
        locs = [pt.map_page(base + i * step, order) for i in range(8)]
        code = 0 if order == ORDER_4K else 1
        assert pt._count(code) == 8 and pt._load(code) == 1
        assert len({(pfn, off >> 6) for pfn, off in locs}) == 1  # one line
        assert [off % 64 for _, off in locs] == [8 * i for i in range(8)]
    pt.map_page(BASE + (64 << 30) + 8 * PAGE_SIZE)  # the next cluster: a new entry
    assert pt._load(0) == 2


def test_a_walk_reads_one_line_per_way_and_one_with_the_walk_caches():
    pt = new_table()
    for i in range(4096):  # a dense 16 MiB
        pt.map_page(BASE + i * PAGE_SIZE)
    lone = BASE + (3 << 30)
    for i in range(8):  # one cluster alone in its 2 MiB region
        pt.map_page(lone + i * PAGE_SIZE)
    pt.walk_cache_on = False
    pt.get_pte(BASE + 77 * PAGE_SIZE, walk=True)
    # one line per way, all after the (free) table registers
    assert len(pt.last_walk) == WAYS and {s for _, s in pt.last_walk} == {2}
    pt.walk_cache_on = True
    pt.get_pte(lone, walk=True)  # fills the walk caches
    assert pt.get_pte(lone + 5 * PAGE_SIZE, walk=True) is not None
    assert len(pt.last_walk) == 1  # the region's one way


def test_tags_survive_the_mms_pte_writes():
    pt = new_table()
    va = BASE + 3 * PAGE_SIZE
    loc = pt.map_page(va)
    pte = make_pte(12345, ORDER_4K)
    pt.mm.mem.write(loc, pte)
    assert pt.mm.mem.read(loc) == pte  # the accessors do not see the tag
    way = next(w for w in pt.ways if w.start <= loc[0] < w.start + w.npages)
    raw = U64.unpack_from(way.buf, (loc[0] - way.start) * PAGE_SIZE + loc[1])[0]
    assert raw >> TAG_SHIFT == (CLUSTERED.key(va, 0) >> 36) & 0xFFF  # PTE 3 holds tag bits 36..47
    assert raw & ((1 << TAG_SHIFT) - 1) == pte
    pt.mm.mem.write(loc, 0)  # even a zero leaves the tag
    assert pt.get_pte(va) is None  # no LEAF bit: not a page
    pt.mm.mem.write(loc, pte)
    assert pt.get_pte(va) == loc


def test_an_entry_goes_with_its_last_page():
    pt = new_table()
    vas = [BASE + i * PAGE_SIZE for i in range(16)]
    for va in vas:
        pt.map_page(va)
    assert pt._load(0) == 2
    for va in vas[:7]:
        pt.unmap_page(va)
    assert pt._load(0) == 2 and pt.get_pte(vas[7]) is not None
    pt.unmap_page(vas[7])
    assert pt._load(0) == 1 and pt._count(0) == 8
    assert all(pt.get_pte(va) is None for va in vas[:8])


def test_clustered_entries_take_less_room_on_a_dense_layout():
    pages = {}
    for lay in LAYOUTS:
        pt = new_table(layout=lay)
        for i in range(8192):
            pt.map_page(BASE + i * PAGE_SIZE)
        pages[lay.name] = pt.live_bytes()
    # a line per 8 pages against a line per 4 (tag + PTE slots)
    assert pages["ecpt"] < 0.6 * pages["ecpt_unclustered"]


def test_addresses_beyond_the_tag_are_refused():
    pt = new_table()
    with pytest.raises(PageTableError, match="beyond"):
        pt.map_page(1 << 60)


@pytest.mark.parametrize("code", [0, 1, 2])
def test_entry_bytes_give_back_their_tag_and_page(code):
    shift = 12 + 9 * code
    va = (0x1234567 << shift) & ((1 << 60) - 1)
    va = va >> shift << shift
    tag = CLUSTERED.key(va, code)
    entry = CLUSTERED.entry(tag, make_pte(9, ORDER_4K), va)
    assert len(entry) == 64 and CLUSTERED.tag(entry, 0) == tag
    assert CLUSTERED.code(tag) == code and CLUSTERED.pages(entry, 0) == [va]
