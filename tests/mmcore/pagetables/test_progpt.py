"""Tests of mmcore.pagetables.progpt: the PageTable protocol run by programs."""


import pytest

from bpfvm.stdhelpers import standard_helpers
from mmcore.constants import ORDER_2M, ORDER_4K, PAGE_SIZE
from mmcore.errors import PageTableError
from mmcore.mm import MM, MMConfig
from mmcore.pagetables.loading import PtPrograms
from mmcore.pagetables.progpt import HASHED, ProgramPageTable, PtDesign, program_table
from mmcore.pagetables.pte import PTE_LEAF, make_pte
from mmcore.phys.physmem import MachineSpec, NodeSpec
from tests.conftest import PROGRAMS
from tests.mmcore.machines import pt_sections

PROGRAMS = PROGRAMS
VA = 1 << 32


@pytest.fixture(scope="module")
def hashed() -> PtPrograms:
    return PtPrograms.from_file(PROGRAMS / "hashed_pt.s")


def machine(pwc: bool = True, pages: int = 1 << 15) -> MM:
    return MM(MachineSpec((NodeSpec(pages),)), MMConfig(pwc=pwc))


def table(hashed: PtPrograms, engine: str = "interp", pwc: bool = True, **kw) -> ProgramPageTable:
    return ProgramPageTable(machine(pwc), HASHED, hashed, engine=engine, **kw)


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_map_get_unmap(hashed, engine):
    pt = table(hashed, engine)
    loc = pt.map_page(VA)
    assert pt.mm.mem.read(loc) == PTE_LEAF  # reserved, not present
    assert pt.get_pte(VA) == loc and pt.get_pte(VA, walk=True) == loc
    assert pt.get_pte(VA + PAGE_SIZE) is None
    assert pt.map_page(VA) == loc  # mapping again finds the same slot
    big = pt.map_page(VA + (2 << 20), ORDER_2M)
    assert pt.get_pte(VA + (2 << 20) + 5 * PAGE_SIZE) == big  # any va inside the 2 MiB page
    pt.unmap_page(VA)
    assert pt.get_pte(VA) is None
    with pytest.raises(PageTableError, match="not mapped"):
        pt.unmap_page(VA)
    assert pt.stats.maps == 3 and pt.stats.unmaps == 2


def test_location_is_inside_the_region(hashed):
    pt = table(hashed)
    pfn, off = pt.map_page(VA)
    region = pt.region
    assert region.start <= pfn < region.start + region.npages
    assert off % 8 == 0 and (pfn - region.start) * PAGE_SIZE + off >= 64


@pytest.mark.parametrize("pwc, refs", [(True, 1), (False, 1)])
def test_home_bucket_hit_costs_one_line(hashed, pwc, refs):
    pt = table(hashed, pwc=pwc)
    pt.map_page(VA)
    before = pt.walk_refs
    pt.get_pte(VA, walk=True)
    assert pt.walk_refs - before == refs


def test_huge_page_walk_reads_the_header_once_cached(hashed):
    cached, uncached = table(hashed, pwc=True), table(hashed, pwc=False)
    for pt in (cached, uncached):
        pt.map_page(VA, ORDER_2M)
        pt.get_pte(VA + PAGE_SIZE, walk=True)  # 4 KiB probe, header, 2 MiB probe
        before = pt.walk_refs
        pt.get_pte(VA + PAGE_SIZE, walk=True)
        pt.refs = pt.walk_refs - before
    assert uncached.refs == cached.refs + 1
    assert cached.stats.cache_hits >= 1 and uncached.stats.cache_hits == 0


def test_growth_keeps_every_pte(hashed):
    pt = table(hashed)
    first = pt.region.npages
    for i in range(600):
        loc = pt.map_page(VA + i * PAGE_SIZE)
        pt.mm.mem.write(loc, make_pte(1000 + i, ORDER_4K))
    assert pt.region.npages > first and pt.stats.grows >= 1
    for i in range(600):
        assert pt.mm.mem.read(pt.get_pte(VA + i * PAGE_SIZE)) == make_pte(1000 + i, ORDER_4K)
    assert pt.mm.regions.pages() == pt.region.npages  # the old regions went back


def test_destroy_frees_the_region(hashed):
    mm = machine()
    free = mm.pa.free_pages_node(0)
    pt = ProgramPageTable(mm, HASHED, hashed)
    assert mm.regions.pages() == pt.table_pages() == 1
    pt.destroy()
    mm.pa.drain_all()
    assert mm.regions.pages() == 0 and mm.pa.free_pages_node(0) == free


BAD = """\
.hook pt_map
    r9 = 4096 ll
    r0 = *(u64 *)(r1 + 0)
    r0 += {map_off}
    exit
.hook pt_unmap
    r9 = 4096 ll
    r0 = 0
    exit
.hook pt_lookup
    r9 = 4096 ll
    r0 = *(u64 *)(r1 + 0)
    r0 += 68
    exit
"""
FAULTY = BAD.replace("r0 += 68", "r0 = *(u64 *)(r0 + 4096)")


@pytest.mark.parametrize("map_off, ok", [(64, True), (12, False), (20, False), (4088, True)])
def test_map_pointers_are_validated(map_off, ok):
    progs = PtPrograms("bad", pt_sections(BAD.format(map_off=map_off), "bad.s"),
                       standard_helpers())
    pt = ProgramPageTable(machine(), PtDesign("bad", lambda n: 100, 1.0), progs)
    if ok:
        assert pt.map_page(VA) == (pt.region.start, map_off)
    else:
        with pytest.raises(PageTableError, match="invalid pointer"):
            pt.map_page(VA)
        assert pt.stats.bad_pointers == 1 and "not a PTE slot" in pt.stats.last_error


def test_misaligned_lookup_is_not_mapped_and_counted():
    progs = PtPrograms("bad", pt_sections(BAD.format(map_off=64), "bad.s"), standard_helpers())
    pt = ProgramPageTable(machine(), PtDesign("bad", lambda n: 100, 1.0), progs)
    assert pt.get_pte(0) is None and pt.stats.bad_pointers == 1


def test_a_faulting_program_fails_cleanly():
    # not verifiable (reads past the region): put in the cache unverified
    progs = PtPrograms("bad", pt_sections(FAULTY.format(map_off=64), "bad.s"),
                       standard_helpers())
    progs.verified[4096] = {h: p for h, p in progs.templates.items()}
    pt = ProgramPageTable(machine(), PtDesign("bad", lambda n: 100, 1.0), progs)
    with pytest.raises(PageTableError, match="pt_lookup faulted"):
        pt.get_pte(VA)
    assert pt.stats.faults == 1


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_processes_run_on_a_hashed_table(hashed, engine):
    mm = machine(pages=1 << 16)
    proc = mm.spawn(page_table=program_table(HASHED, hashed, engine=engine))
    start = proc.mmap(8 << 20, huge="thp")
    small = proc.mmap(1 << 20, huge="none")
    for va in range(small, small + (1 << 20), PAGE_SIZE):
        assert proc.access(va) >= 0
    for va in range(start, start + (8 << 20), 1 << 20):
        assert proc.access(va) >= 0
    assert proc.present == [256, 4, 0]
    mm.check()
    proc.munmap(small, 1 << 19)
    assert proc.present == [128, 4, 0]
    mm.check()
    mm.exit(proc)
    assert mm.regions.pages() == 0
    mm.check()
