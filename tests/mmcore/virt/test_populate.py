"""``Process.populate`` leaves exactly the state that one ``access`` per page
leaves, under pressure: reclaim to swap, migratetype fallbacks, THP and
4 KiB VMAs, placement and huge-page programs attached on both engines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pytest

from bpfvm.asm.assembler import assemble_file
from bpfvm.load import load
from mmcore.constants import MT
from mmcore.hooks.host import MmEnv, policy_helpers
from mmcore.hooks.specs import HOOKS
from mmcore.mm import MM, MMConfig
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.sources import Source
from mmcore.virt.process import Process
from tests.conftest import PROGRAMS


def _attach(mm: MM, engine: str) -> None:
    helpers = policy_helpers()
    for name in ("tier_placement", "thp_policy"):
        program = assemble_file(PROGRAMS / f"{name}.s", helpers=helpers)
        eng = load(program, engine=engine, helpers=helpers, hook=HOOKS[program.hook],
                   env=MmEnv(mm)).engine
        mm.hooks.attach(program.hook, eng)


def _one_by_one(p: Process, va: int, n: int) -> int:
    done = 0
    for i in range(n):
        pfn = p.access(va + (i << 12))
        if not p.alive:
            break
        done += pfn >= 0
    return done


def _state(mm: MM) -> dict[str, Any]:
    fr = mm.frames
    arrays = {k: bytes(v) for k, v in vars(fr).items()
              if isinstance(v, (bytearray, memoryview))}  # the per-frame and pageblock arrays
    zones = [(list(z.heads), list(z.counts), list(z.nr_free), z.free_pages, z.pcp)
             for z in mm.phys.zones]
    lru = mm.lru
    procs = {pid: (p.present, p.swapped, sorted(p.pmd_count.items()), sorted(p.huge2m),
                   list(p.tlb.c4k.items()), list(p.tlb.c2m.items()), p.tlb.hits, p.tlb.misses,
                   p.pt.walk_refs, p.pt.last_walk,
                   [list(c.items()) for c in p.pt.pwc.caches], p.pt.pwc.hits, p.alive)
             for pid, p in mm.procs.items()}
    ptes = {pfn: bytes(buf[base:base + 4096]) for pfn, (buf, base) in mm.mem.frames.items()}
    return {"frames": arrays, "zones": repr(zones), "procs": procs, "ptes": ptes,
            "lru": [list(x) for x in (lru.head, lru.tail, lru.count, lru.entries, lru.zone_count)],
            "stats": asdict(mm.stats), "alloc": vars(mm.pa.stats), "steals": mm.pa.steals,
            "hooks": mm.hooks.stats(), "metrics": mm.metrics()}


def _run(engine: str | None, touch: Callable[[Process, int, int], int]) -> tuple[list, dict]:
    # most anonymous pages pinned (reclaim keeps them): the OOM killer ends a process
    mm = MM(MachineSpec((NodeSpec(8192, 2048), NodeSpec(8192))), MMConfig(pin_rate=0.7))
    if engine:
        _attach(mm, engine)
    for i in range(300):  # unmovable pages scattered: later allocations fall back
        mm.kernel.alloc(Source.SLAB_UNMOVABLE, i % 3, 10**6, nid=i & 1)
    got = []
    procs = [mm.spawn(home_node=i & 1) for i in range(3)]
    areas: dict[Process, list[int]] = {p: [] for p in procs}
    for round_ in range(7):
        for i, p in enumerate(procs):
            if not p.alive:
                continue
            huge = "thp" if (i + round_) % 3 == 0 else "none"
            va = p.mmap(1100 << 12, huge, hint=1000)
            got.append(touch(p, va + 4096, 1099))
            if areas[p] and p.alive:  # present pages, TLB hits and swapped-out pages
                got.append(touch(p, areas[p][round_ % len(areas[p])], 1100))
            areas[p].append(va)
            mm.tick += 1
            mm.background()
        for nid in (0, 1):  # age the new pages and swap some out
            mm.reclaim.shrink_active(nid, 1, 512)
            mm.reclaim.shrink_node(nid, 256, MT.MOVABLE)
    return got, _state(mm)


@pytest.mark.parametrize("engine", [None, "interp", "jit"])
def test_populate_leaves_the_state_of_one_access_per_page(engine):
    got, state = _run(engine, Process.populate)
    want, expected = _run(engine, _one_by_one)
    assert got == want
    for key in expected:  # one part at a time, for a readable failure
        assert state[key] == expected[key], key
    stats, hooks = expected["stats"], expected["hooks"]
    assert stats["swapouts"] and stats["major_faults"]
    assert stats["huge_success"][1] or engine  # thp_policy.s refuses THP on so small a node
    assert expected["alloc"]["direct_reclaims"] and expected["steals"]
    assert len(expected["procs"]) < 3  # a process was OOM-killed
    if engine:
        assert hooks["placement"]["calls"] > 0 and hooks["hugepage"]["calls"] > 0
