"""The windowed array scans (:mod:`mmcore.virt.tailscan`) against the
page-by-page reference of ``test_reclaim_batches`` in the cases its random
machines rarely reach: windows of a few pages, the skip cap reached, PTE
groups found by mask, processes the array path leaves to the per-page path
(another class, a table read through ``mm.mem``); TLB contents and counts
compared too."""

from __future__ import annotations

import pytest

from mmcore.virt import ptebits, reclaim, tailscan
from mmcore.virt.process import Process
from tests.mmcore.random_machines import random_mm
from tests.mmcore.virt import test_reclaim_batches as ref


class OtherProcess(Process):
    """A process class of its own: the array path leaves its pages alone."""


def tlbs(mm) -> tuple:
    return tuple((p.pid, tuple(p.tlb.c4k.items()), tuple(p.tlb.c2m.items()),
                  p.tlb.invalidations) for p in mm.procs.values())


def compare(seed: int, balance: str = "fixed", odd: bool = False) -> None:
    machines = random_mm(seed), random_mm(seed)
    for mm in machines:
        mm.reclaim.balance = balance
        if odd:
            for i, p in enumerate(sorted(mm.procs.values(), key=lambda p: p.pid)):
                if i % 3 == 1:
                    p.__class__ = OtherProcess
                elif i % 3 == 2:
                    p.radix = False  # its entries read through mm.mem
    want = ref.run_scans(machines[0], ref.PerPageReclaimer, seed)
    got = ref.run_scans(machines[1], reclaim.Reclaimer, seed)
    assert got == want
    assert ref.state(machines[1]) == ref.state(machines[0])
    assert tlbs(machines[1]) == tlbs(machines[0])
    machines[1].check()


@pytest.mark.parametrize("seed", range(4))
def test_small_windows(seed, monkeypatch):
    monkeypatch.setattr(tailscan, "FIRST_WINDOW", 1)
    monkeypatch.setattr(tailscan, "MAX_WINDOW", 3)
    monkeypatch.setattr(reclaim, "FIRST_WINDOW", 1)
    monkeypatch.setattr(reclaim, "MAX_WINDOW", 3)
    compare(seed, "cost")


@pytest.mark.parametrize("seed", range(4))
def test_skip_cap_reached(seed, monkeypatch):
    for mod in (reclaim, ref):
        monkeypatch.setattr(mod, "SWAP_CLUSTER_MAX_SKIPPED", 5)
    compare(seed)


@pytest.mark.parametrize("seed", range(4))
def test_owners_left_to_the_per_page_path(seed):
    compare(seed, "cost", odd=True)


@pytest.mark.parametrize("seed", range(3))
def test_groups_found_by_mask(seed, monkeypatch):
    monkeypatch.setattr(ptebits, "MANY_RUNS", 0)
    compare(seed)
