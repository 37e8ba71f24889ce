"""Tests of mmcore.pagetables.trainer: models, directory, placement and the mirror of
the learned program's prediction."""

import random

import pytest

from mmcore.constants import ORDER_4K, PAGE_SHIFT, PAGE_SIZE
from mmcore.mm import MM, MMConfig
from mmcore.pagetables.loading import PtPrograms
from mmcore.pagetables.progpt import ProgramPageTable
from mmcore.pagetables.pte import make_pte
from mmcore.pagetables.trainer import (
    LEARNED,
    LINE,
    META_END,
    SEG_MAX,
    SLOT_LINE0,
    LearnedTrainer,
    Model,
    Segment,
    last_window_line,
    tag_of,
)
from mmcore.phys.physmem import MachineSpec, NodeSpec
from tests.conftest import PROGRAMS

PROGRAMS = PROGRAMS
VPN = 1 << 20  # 4 GiB


def seg(lo: int) -> Segment:
    return Segment(lo, 10, SLOT_LINE0, 0)


@pytest.mark.parametrize("k, expect", [
    (0, 0), (VPN - 1, 0), (VPN, 0), (VPN + 99, 0), (VPN + 100, 1), (VPN + 5000, 2),
    (VPN + (1 << 30), 3), (1 << 50, 3),
])
def test_segment_is_the_predecessor(k, expect):
    model = Model.build([seg(VPN), seg(VPN + 100), seg(VPN + 5000), seg(VPN + (1 << 29))])
    assert model.segment(k) == expect


def test_segment_with_many_segments_in_one_bucket():
    los = sorted(random.Random(3).sample(range(VPN, VPN + (1 << 24)), SEG_MAX - 1)) + [1 << 40]
    model = Model.build([seg(lo) for lo in los])
    for g, lo in enumerate(los[:-1]):
        assert model.segment(lo) == g and model.segment(lo + 1) in (g, g + 1)


def test_line_clamps_into_the_slot_lines():
    last = last_window_line(8 * PAGE_SIZE)
    model = Model.build([Segment(VPN, 1000, SLOT_LINE0 + 3, 1 << 16)])
    assert model.line(VPN + 2, last) == SLOT_LINE0 + 5
    assert model.line(VPN - 5, last) == SLOT_LINE0 + 3
    assert model.line(VPN + 900, last) == last  # beyond the region's lines
    assert Model.build([Segment(0, 0, 0, 0)]).line(VPN, last) == SLOT_LINE0


@pytest.mark.parametrize("keys, runs", [
    ([0, 1, 2, 3], 1), ([0, 1, 100, 101], 2), ([0, 65, 131], 2), ([0, 66, 132], 3),
])
def test_runs_cut_at_gaps(keys, runs):
    entries = [(VPN + k, 0, 0) for k in keys]
    assert len(LearnedTrainer(gap=64)._runs(entries)) == runs


def test_runs_are_merged_down_to_the_segment_records():
    entries = [(VPN + 1000 * i, 0, 0) for i in range(SEG_MAX + 50)]
    assert len(LearnedTrainer()._runs(entries)) == SEG_MAX


def fitted(entries, pages=16):
    buf = bytearray(pages * PAGE_SIZE)
    ok = LearnedTrainer().fit(buf, entries)
    return buf, ok


def test_fit_places_every_key_in_its_window_and_reads_back():
    rng = random.Random(5)
    entries = [(VPN + v, 0, make_pte(i, ORDER_4K)) for i, v in
               enumerate(sorted(rng.sample(range(1 << 16), 500)))]
    buf, ok = fitted(entries)
    assert ok
    assert sorted(LearnedTrainer().read(buf)) == sorted(entries)


def test_fit_fails_when_the_region_is_too_small():
    entries = [(VPN + v, 0, 1) for v in range(2000)]
    buf, ok = fitted(entries, pages=5)  # 1024 - 274 lines * 4 slots < 2000 keys
    assert not ok


def test_stale_after_a_share_of_changes():
    t = LearnedTrainer(refit_share=0.25, min_refit=32)
    assert not t.stale(1000, 250) and t.stale(1000, 251) and t.stale(10, 33)


@pytest.fixture(scope="module")
def learned() -> PtPrograms:
    return PtPrograms.from_file(PROGRAMS / "learned_pt.s")


def test_program_finds_every_key_where_the_model_predicts(learned):
    mm = MM(MachineSpec((NodeSpec(1 << 14),)), MMConfig(pwc=True))
    pt = ProgramPageTable(mm, LEARNED, learned, pages=16)
    rng = random.Random(9)
    vpns = sorted(rng.sample(range(VPN, VPN + 3000), 600))
    vpns += [VPN + (1 << 25) + i for i in range(50)]
    entries = [(v, 0, make_pte(i, ORDER_4K)) for i, v in enumerate(vpns)]
    trainer = LearnedTrainer()
    pt.trainer = trainer
    pt._format()
    assert trainer.fit(pt.region.buf, entries)
    last = last_window_line(len(pt.region.buf))
    for v, _, pte in entries:
        loc = pt.get_pte(v << PAGE_SHIFT)
        off = (loc[0] - pt.region.start) * PAGE_SIZE + loc[1]
        assert pt.mm.mem.read(loc) == pte and off >= META_END
        # the program's slot is in the window the trainer's mirror predicts
        assert off // LINE - trainer.model.line(v, last) in (0, 1)


def test_dense_pages_cost_one_line_per_walk(learned):
    mm = MM(MachineSpec((NodeSpec(1 << 14),)), MMConfig(pwc=True))
    pt = ProgramPageTable(mm, LEARNED, learned)
    for i in range(2000):
        pt.map_page((VPN + i) << PAGE_SHIFT)
    pt.refit()
    for i in range(2000):  # warm the walk cache with the metadata lines
        pt.get_pte((VPN + i) << PAGE_SHIFT, walk=True)
    before = pt.walk_refs
    for i in range(2000):
        pt.get_pte((VPN + i) << PAGE_SHIFT, walk=True)
    assert pt.walk_refs - before == 2000


def test_tags():
    assert tag_of(5, 1) == 5 << 4 | 1 << 2 | 2 and tag_of(0, 0) != 0
