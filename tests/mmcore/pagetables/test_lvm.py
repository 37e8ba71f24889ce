"""The LVM-like learned page table (programs/lvm_pt.s with mmcore.pagetables.lvm):
verified, map / unmap / lookup against a dict through leaf retrains, root
retrains, region additions and grows, identical on both engines, the
host's mirror of the index equal to what the programs compute, and a walk
with the models cached making one memory access."""

import functools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmcore.constants import ORDER_4K, PAGE_SIZE
from mmcore.mm import MM
from mmcore.pagetables.loading import PtPrograms
from mmcore.pagetables.lvm.fit import FitConfig, fit_keys
from mmcore.pagetables.lvm.index import (
    ERR_MAX,
    META_END,
    NMAX,
    NODE_ERR,
    NODE_LEAVES,
    RootModel,
    find_leaf,
    group_all,
    probe_order,
    tag_of,
    true_leaf,
)
from mmcore.pagetables.lvm.table import LvmPageTable
from mmcore.pagetables.pte import make_pte
from mmcore.phys.physmem import MachineSpec, NodeSpec
from tests.conftest import PROGRAMS
from tests.mmcore.pagetables.test_pt_programs import OPS, Model, apply, check_all, random_ops

BASE = 1 << 32


@functools.cache
def programs() -> PtPrograms:
    return PtPrograms.from_file(PROGRAMS / "lvm_pt.s")


def new_table(engine: str = "interp", frames: int = 1 << 16, **kw) -> LvmPageTable:
    return LvmPageTable(MM(MachineSpec((NodeSpec(frames),))), programs(), engine=engine, **kw)


@pytest.mark.parametrize("size", [64 << 10, 128 << 10, 1 << 20])
def test_verified_for_every_region_size(size):
    assert set(programs().for_region(size)) == {"pt_map", "pt_unmap", "pt_lookup"}


def _root_and_nodes(bounds):
    nodes = group_all(bounds)
    root = RootModel.fit([bounds[n.first] if j else 0 for j, n in enumerate(nodes)])
    return root, nodes


def test_root_and_node_search_finds_the_owning_leaf():
    rng = random.Random(3)
    for n in (1, 2, 3, 17, 300, 1024):
        bounds = [0] + sorted(rng.sample(range(1, 1 << 36), n - 1))
        root, nodes = _root_and_nodes(bounds)
        assert 1 <= len(nodes) <= NMAX and all(nd.count <= NODE_LEAVES for nd in nodes)
        assert [nd.first for nd in nodes] == sorted({nd.first for nd in nodes})
        assert sum(nd.count for nd in nodes) == n
        keys = [rng.randrange(1 << 36) for _ in range(300)] + bounds + [b + 1 for b in bounds]
        for k in keys:
            assert find_leaf(root, nodes, bounds, k) == true_leaf(bounds, k), (n, k)


def test_nodes_fit_a_layout_with_holes_that_one_line_cannot():
    # 900 evenly spaced leaves in three far-apart runs: one line over them
    # all is off by hundreds of leaves, the nodes by a few
    bounds = [0] + [base + i * 64 for base in (1 << 20, 1 << 30, 1 << 34) for i in range(300)]
    assert RootModel.fit(bounds).err > 100
    root, nodes = _root_and_nodes(bounds)
    assert max(nd.model.err for nd in nodes) <= NODE_ERR
    for k in (bounds[5] + 3, bounds[450], bounds[899] + 10):
        assert find_leaf(root, nodes, bounds, k) == true_leaf(bounds, k)


def test_fitted_leaves_keep_every_key_within_their_bound():
    rng = random.Random(4)
    vpns = sorted(set(rng.randrange(1 << 20) for _ in range(3000)) | set(range(5000, 9000)))
    keys = [(v, 0, v) for v in vpns]
    leaves = fit_keys(keys, FitConfig(), 2048)
    assert len(leaves) > 1
    placed = {}
    for leaf in leaves:
        assert leaf.model.err <= ERR_MAX and leaf.model.slots <= 2048
        for s, (tag, _) in leaf.slots.items():
            placed[tag] = (leaf, s)
    assert len(placed) == len(keys)
    for v in vpns:
        leaf, s = placed[tag_of(v, 0)]
        assert s in leaf.model.probes(v)


def test_probe_order_is_centre_out():
    assert probe_order(5, 2, 100) == [5, 6, 4, 7, 3]
    assert probe_order(0, 1, 100) == [0, 1]
    assert probe_order(9, 1, 10) == [9, 8]


def test_sequential_faults_retrain_leaves_not_the_table():
    pt, model = new_table(), {}
    for i in range(6000):
        va = BASE + i * PAGE_SIZE
        model[va] = make_pte(100 + i, ORDER_4K)
        pt.mm.mem.write(pt.map_page(va), model[va])
    assert pt.stats.builds == 1  # the empty table's; every later change was local
    assert 0 < pt.stats.leaf_retrains < 6000 // 20
    assert pt.stats.node_retrains >= 1 and len(pt.leaves) > 1
    assert pt.stats.root_retrains == 0  # sequential leaves: their node's line still fits them
    for va, pte in model.items():
        assert pt.mm.mem.read(pt.get_pte(va + 123)) == pte
    assert not pt.check()


def test_regions_are_added_then_the_table_grows():
    pt, model = new_table(), {}
    rng = random.Random(9)
    for i in range(26000):
        va = BASE + rng.randrange(1 << 17) * PAGE_SIZE
        if va in model:
            continue
        model[va] = make_pte(7 + i, ORDER_4K)
        pt.mm.mem.write(pt.map_page(va), model[va])
    assert pt.stats.regions_added > 1 and pt.stats.grows >= 1 and pt.size > 64 << 10
    assert len(pt.regions) <= 8
    assert pt.mm.regions.pages() == pt.table_pages()  # old regions given back
    for va, pte in model.items():
        assert pt.mm.mem.read(pt.get_pte(va, walk=True)) == pte
    pt.refit()
    for va, pte in model.items():
        assert pt.mm.mem.read(pt.get_pte(va)) == pte


def test_leaves_live_in_several_regions_and_lookups_return_them():
    pt = new_table()
    vas = [BASE + i * 3 * PAGE_SIZE for i in range(5000)]
    for va in vas:
        pt.map_page(va)
    assert len({leaf.region for leaf in pt.leaves}) > 1
    owners = set()
    for va in vas:
        pfn = pt.get_pte(va)[0]
        owner = [i for i, r in enumerate(pt.regions) if r.start <= pfn < r.start + r.npages]
        assert len(owner) == 1
        owners.add(owner[0])
    assert len(owners) > 1


def test_engines_agree_through_retrains():
    tables = [new_table(engine) for engine in ("interp", "jit")]
    models = [Model(), Model()]
    for step, op in enumerate(random_ops(11, 800)):
        answers = [apply(pt, m, op, 100 + step) for pt, m in zip(tables, models, strict=True)]
        assert answers[0] == answers[1], f"step {step}: {op}"
        assert [r.buf for r in tables[0].regions] == [r.buf for r in tables[1].regions]
    assert tables[0].stats.leaf_retrains > 0 and tables[0].walk_refs > 0
    for pt, m in zip(tables, models, strict=True):
        check_all(pt, m)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, max_size=150))
def test_semantics_against_a_dict(ops):
    pt, model = new_table(), Model()
    for step, op in enumerate(ops):
        apply(pt, model, op, 1 + step)
    check_all(pt, model)
    assert not pt.check()
    pt.destroy()
    assert pt.mm.regions.pages() == 0


def test_a_walk_with_the_models_cached_is_one_access():
    pt = new_table()
    for i in range(2000):
        pt.map_page(BASE + i * PAGE_SIZE)
    pt.refit()
    pt.get_pte(BASE + 40 * PAGE_SIZE, walk=True)  # fills the model cache
    assert len(pt.last_walk) >= 2
    hits = pt.stats.model_hits
    pt.get_pte(BASE + 41 * PAGE_SIZE, walk=True)
    assert len(pt.last_walk) == 1 and pt.stats.model_hits > hits
    pt.walk_cache_on = False
    pt.walk_cache.clear()
    pt.get_pte(BASE + 42 * PAGE_SIZE, walk=True)
    # the node's record, then the leaf bounds and record lines, then the slot
    assert len(pt.last_walk) >= 3
    assert {s for _, s in pt.last_walk} == {1, 2, 3}


def test_the_index_stays_in_the_first_region():
    pt = new_table()
    for i in range(100):
        loc = pt.map_page(BASE + i * PAGE_SIZE)
        assert loc[0] != pt.regions[0].start or loc[1] >= META_END % PAGE_SIZE or \
            loc[0] >= pt.regions[0].start + META_END // PAGE_SIZE


def test_small_vmas_around_a_hole_keep_node_errors_small():
    pt, model = new_table(), {}
    starts = [BASE + j * (1 << 22) for j in range(200)]
    starts += [BASE + (1 << 40) + j * (1 << 22) for j in range(200)]  # far above a hole
    for j, start in enumerate(starts):
        for i in range(8):  # a 32 KiB VMA, every page touched
            va = start + i * PAGE_SIZE
            model[va] = make_pte(10 + 8 * j + i, ORDER_4K)
            pt.mm.mem.write(pt.map_page(va), model[va])
    assert len(pt.leaves) > 100 and len(pt.nodes) > 1
    assert RootModel.fit(pt.bounds).err > 20  # one line over every leaf is far off
    assert max(n.model.err for n in pt.nodes) <= NODE_ERR
    pt.walk_cache_on = False
    for va, pte in list(model.items())[::97]:
        assert pt.mm.mem.read(pt.get_pte(va, walk=True)) == pte
        # node bounds (all 32 in 4 lines), the node's record, at most two
        # lines of leaf bounds (a node's error is small), the leaf's record, the slot
        assert len(pt.last_walk) <= 4 + 1 + 2 + 1 + 1
    assert not pt.check()
