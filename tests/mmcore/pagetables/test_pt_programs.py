"""The page-table programs (programs/hashed_pt.s, programs/learned_pt.s):
verified for many region sizes, identical on both engines, and map / unmap /
lookup semantics against a dict model under hypothesis."""

import functools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmcore.constants import ORDER_1G, ORDER_2M, ORDER_4K, PAGE_SIZE
from mmcore.errors import PageTableError
from mmcore.mm import MM
from mmcore.pagetables.loading import PtPrograms
from mmcore.pagetables.progpt import HASHED, ProgramPageTable
from mmcore.pagetables.pte import make_pte
from mmcore.pagetables.trainer import LEARNED
from mmcore.phys.physmem import MachineSpec, NodeSpec
from tests.conftest import PROGRAMS

PROGRAMS = PROGRAMS
DESIGNS = {"hashed": HASHED, "learned": LEARNED}
BASE = 1 << 32
ORDERS = (ORDER_4K, ORDER_2M, ORDER_1G)


@functools.cache
def _programs() -> dict[str, PtPrograms]:
    return {name: PtPrograms.from_file(PROGRAMS / f"{name}_pt.s") for name in DESIGNS}


@pytest.fixture
def programs() -> dict[str, PtPrograms]:
    return _programs()


def new_table(programs, name: str, engine: str = "interp", **kw) -> ProgramPageTable:
    mm = MM(MachineSpec((NodeSpec(1 << 14),)))
    return ProgramPageTable(mm, DESIGNS[name], programs[name], engine=engine, **kw)


@pytest.mark.parametrize("name", sorted(DESIGNS))
@pytest.mark.parametrize("pages", [0, 1, 3, 64, 1000])
def test_verified_for_every_region_size(programs, name, pages):
    nbytes = (DESIGNS[name].min_pages + pages) * PAGE_SIZE
    progs = programs[name].for_region(nbytes)  # raises Rejected otherwise
    assert set(progs) == {"pt_map", "pt_unmap", "pt_lookup"}


def va_of(chunk: int, index: int, order: int) -> int:
    """Page ``index`` of 2 MiB chunk ``chunk`` (chunks 6 and 7 lie far away)."""
    if order == ORDER_1G:
        return BASE + (4 << 30) * (1 + index % 2)
    far = 1000 * chunk if chunk >= 6 else chunk
    return BASE + (far << 21) + (index << 12 if order == ORDER_4K else 0)


def random_ops(seed: int, n: int) -> list[tuple]:
    rng = random.Random(seed)
    ops = []
    for _ in range(n):
        kind = rng.choice(("map", "map", "map", "unmap", "lookup", "walk"))
        order = rng.choices(ORDERS, (8, 2, 1))[0]
        ops.append((kind, rng.randrange(8), rng.randrange(64), order, rng.randrange(1 << 12)))
    return ops


class Model:
    """The dict the table must agree with: page va -> (order, PTE value)."""

    def __init__(self) -> None:
        self.pages: dict[int, tuple[int, int]] = {}

    def covering(self, va: int) -> int | None:
        for order in ORDERS:
            base = va & -(PAGE_SIZE << order)
            hit = self.pages.get(base)
            if hit is not None and hit[0] == order:
                return base
        return None

    def conflicts(self, va: int, order: int) -> bool:
        size = PAGE_SIZE << order
        return any(v < va + size and va < v + (PAGE_SIZE << o) and (v, o) != (va, order)
                   for v, (o, _) in self.pages.items())


def apply(pt: ProgramPageTable, model: Model, op: tuple, pfn: int) -> object:
    """Run one op on the table and check it against the model; returns what
    the table answered (for comparing engines)."""
    kind, chunk, index, order, offset = op
    va = va_of(chunk, index, order)
    if kind == "map":
        if model.conflicts(va, order):
            return None
        loc = pt.map_page(va, order)
        pte = make_pte(pfn, order)
        pt.mm.mem.write(loc, pte)
        model.pages[va] = (order, pte)
        return loc
    if kind == "unmap":  # removes the page covering va, as the radix table does
        base = model.covering(va)
        if base is not None:
            pt.unmap_page(va)
            del model.pages[base]
            return "unmapped"
        with pytest.raises(PageTableError, match="not mapped"):
            pt.unmap_page(va)
        return "not mapped"
    probe = va + (offset * PAGE_SIZE) % (PAGE_SIZE << order) + offset % 8 * 8
    loc = pt.get_pte(probe, walk=kind == "walk")
    base = model.covering(probe)
    if base is None:
        assert loc is None, f"{probe:#x} is not mapped but the table finds {loc}"
    else:
        assert loc is not None, f"{probe:#x} is in the page at {base:#x} but not found"
        assert pt.mm.mem.read(loc) == model.pages[base][1]
    return loc


def check_all(pt: ProgramPageTable, model: Model) -> None:
    for va, (_, pte) in model.pages.items():
        assert pt.mm.mem.read(pt.get_pte(va)) == pte
    assert pt.mapped == {va: order for va, (order, _) in model.pages.items()}


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_engines_agree(programs, name):
    tables = [new_table(programs, name, engine) for engine in ("interp", "jit")]
    models = [Model(), Model()]
    for step, op in enumerate(random_ops(7, 400)):
        answers = [apply(pt, m, op, 100 + step) for pt, m in zip(tables, models, strict=True)]
        assert answers[0] == answers[1], f"step {step}: {op}"
        assert tables[0].region.buf == tables[1].region.buf, f"step {step}: {op}"
    assert tables[0].walk_refs > 0
    for pt, m in zip(tables, models, strict=True):
        check_all(pt, m)


OPS = st.tuples(st.sampled_from(("map", "map", "unmap", "lookup", "walk")),
                st.integers(0, 7), st.integers(0, 63), st.sampled_from(ORDERS),
                st.integers(0, 4095))


@pytest.mark.parametrize("name", sorted(DESIGNS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, max_size=120))
def test_semantics_against_a_dict(name, ops):
    pt, model = new_table(_programs(), name), Model()
    for step, op in enumerate(ops):
        apply(pt, model, op, 1 + step)
    check_all(pt, model)
    pt.destroy()
    assert pt.mm.regions.pages() == 0
