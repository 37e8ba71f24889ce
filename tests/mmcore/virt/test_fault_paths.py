"""The fault path's written-out cases leave the state the general path
leaves: ``Process.fault`` (a 4 KiB page from a pcp list, a 2 MiB page with
no program), ``PageAllocator.alloc`` of a block and the munmap/exit walk over the
slots in use (``RadixPageTable.pte_slots``) against the general steps, on
random sequences of faults, THP and 4 KiB mappings, partial munmaps that
split THPs, reclaim to swap and exits, under memory pressure."""

from __future__ import annotations

import random

import pytest

from mmcore.constants import ALLOC_DEFAULT, MT
from mmcore.errors import PageTableError
from mmcore.mm import MM, MMConfig
from mmcore.pagetables.pte import PTE_ACCESSED, PTE_PRESENT, make_pte, pte_order, pte_pfn
from mmcore.pagetables.radix import RadixPageTable
from mmcore.phys.page_alloc import PageAllocator
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.sources import Source
from mmcore.virt.process import Process
from tests.mmcore.virt.test_populate import _attach, _state


def _general_fault(p: Process, va: int) -> int:
    """``Process.fault`` through the general path only."""
    vma = p.find_vma(va)
    if vma is None:
        return p._fault(va, None, 0)[0]
    e = p.pt.entry(va)
    if e & PTE_PRESENT:  # nothing is done
        return pte_pfn(e) + ((va >> 12) & ((1 << pte_order(e)) - 1))
    if not e and vma.huge == "none":
        return p._fault_none_4k(va, vma)
    return p._fault(va, vma, e)[0]


_ALLOC = PageAllocator.alloc


def _general_alloc(self: PageAllocator, order: int, mt: int, owner: int, index: int = 0,
                   nid: int = 0, flags: int = 7) -> int:
    """``PageAllocator.alloc`` with its order > 0 case as _get_page and prep."""
    if order == 0:
        return _ALLOC(self, order, mt, owner, index, nid, flags)
    pfn = self._get_page(order, mt, nid, "wmark_low")
    if pfn >= 0:
        return self.prep(pfn, order, mt, owner, index)
    return self._slowpath(order, mt, owner, index, nid, flags)


def _general_fault_4k(self: Process, va: int, vma, nid: int = -1) -> int:
    """``Process._fault_4k`` with its page from ``PageAllocator.alloc``."""
    mm = self.mm
    if nid < 0:
        nid = mm.hook_placement(self, vma, 0)
    base = va & -4096
    pfn = mm.pa.alloc(0, int(MT.MOVABLE), self.owner_id, base >> 12, nid, ALLOC_DEFAULT)
    if pfn < 0:
        mm.stats.oom += 1
        return -1
    try:
        self.pt.map_pte(base, 0, make_pte(pfn, 0) | PTE_ACCESSED)
    except PageTableError:
        mm.free(pfn)
        mm.stats.pt_failures += 1
        return -1
    self.pmd_count[base >> 21] = self.pmd_count.get(base >> 21, 0) + 1
    self.present[0] += 1
    mm.lru.add_new(pfn, 0)
    if mm.config.pin_rate:
        mm.maybe_pin(pfn)
    return pfn


def _general_slots(self: RadixPageTable, va: int) -> list[int]:
    base = va & -(1 << 21)
    return [i for i in range(512) if self.get_pte(base | i << 12) is not None]


def _run(seed: int, engine: str | None) -> tuple[list[int], dict]:
    rng = random.Random(seed)
    mm = MM(MachineSpec((NodeSpec(8192, 2048), NodeSpec(8192))),
            MMConfig(pin_rate=0.3, thp_defrag=("madvise", "always", "defer")[seed % 3]))
    if engine:
        _attach(mm, engine)
    for i in range(200):  # unmovable pages scattered: later allocations fall back
        mm.kernel.alloc(Source.SLAB_UNMOVABLE, i % 3, 10**6, nid=i & 1)
    got: list[int] = []
    areas: list[tuple[Process, int, int]] = []
    procs = [mm.spawn(home_node=i & 1) for i in range(3)]
    for step in range(1500):
        procs = [p for p in procs if p.alive]
        if not procs:
            procs = [mm.spawn(home_node=step & 1)]
        p = rng.choice(procs)
        r = rng.random()
        if r < 0.08 or not any(a[0] is p for a in areas):
            size = rng.choice((1, 3, 40, 600, 1500)) << 12
            va = p.mmap(size, rng.choice(("none", "thp", "thp")), hint=rng.randrange(4),
                        madvised=rng.random() < 0.5)
            areas.append((p, va, size))
        elif r < 0.12:  # a partial munmap: THPs inside split
            p2, va, size = rng.choice([a for a in areas if a[0] is p])
            off = rng.randrange(0, size, 4096)
            p2.munmap(va + off, rng.randrange(1, 700) << 12)
        elif r < 0.13:
            mm.exit(p)
        elif r < 0.15:
            nid = rng.randrange(2)
            mm.reclaim.shrink_active(nid, 1, 256)
            mm.reclaim.shrink_node(nid, 128, MT.MOVABLE)
        else:  # a run of faults, some on pages already there
            p2, va, size = rng.choice([a for a in areas if a[0] is p])
            stride = rng.choice((4096, 4096, 2 << 20, 12288))
            off = rng.randrange(0, size, 4096)
            touch = p.fault if rng.random() < 0.5 else p.access  # access: TLB, walk, fault
            for _ in range(rng.randrange(1, 60)):
                if not p.alive:
                    break
                got.append(touch(va + off))
                off = (off + stride) % size
        mm.tick += 1
        if step % 50 == 0:
            mm.background()
    return got, {**_state(mm), "lru entries per zone": list(mm.lru.zone_entries)}


@pytest.mark.parametrize("seed, engine", [(1, None), (2, None), (3, None), (4, "interp")])
def test_fast_fault_paths_leave_the_general_paths_state(seed, engine, monkeypatch):
    got, state = _run(seed, engine)
    monkeypatch.setattr(Process, "fault", _general_fault)
    monkeypatch.setattr(Process, "_fault_4k", _general_fault_4k)
    monkeypatch.setattr(PageAllocator, "alloc", _general_alloc)
    monkeypatch.setattr(RadixPageTable, "pte_slots", _general_slots)
    want, expected = _run(seed, engine)
    assert got == want
    for key in expected:  # one part at a time, for a readable failure
        assert state[key] == expected[key], key
    stats = expected["stats"]
    assert stats["swapouts"] and stats["major_faults"] and stats["faults"] > 5_000
    if not engine:  # thp_policy.s refuses THP on so small a node
        assert stats["huge_success"][1] and stats["thp_splits"]
