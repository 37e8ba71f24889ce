"""Randomized machines for comparing the bulk (numpy) scans with per-page
references: several nodes and zones, fragmented by interleaved 4 KiB
anonymous, THP, page-cache and unmovable kernel pages, some pinned, with
processes exited to leave holes of free frames between allocated ones."""

from __future__ import annotations

import random

from mmcore.constants import PAGEBLOCK_PAGES
from mmcore.mm import MM, MMConfig
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.sources import Source


def random_mm(seed: int) -> MM:
    """The same seed builds the same machine."""
    rng = random.Random(seed)
    sizes = [rng.randrange(8, 24) for _ in range(rng.randrange(1, 4))]  # pageblocks
    nodes = tuple(NodeSpec(b * PAGEBLOCK_PAGES, rng.choice((0, b // 4, b // 2)) * PAGEBLOCK_PAGES)
                  for b in sizes)
    mm = MM(MachineSpec(nodes), MMConfig(pin_rate=rng.choice((0.0, 0.02)), pin_seed=seed))
    procs = []
    for nid, ns in enumerate(nodes):
        budget = ns.pages * rng.randrange(70, 90) // 100  # 4 KiB pages to fault on the node
        while budget > 0:
            p = mm.spawn(home_node=nid)
            thp = rng.random() < 0.3
            length = (rng.randrange(1, 4) << 21) if thp else (rng.randrange(1, 5) << 20)
            length = min(length, budget << 12) & ~((2 << 20) - 1 if thp else 4095)
            if not length:
                break
            budget -= length >> 12
            va = p.mmap(length, "thp" if thp else "none")
            for off in range(0, length, 2 << 20 if thp else 4096):
                p.fault(va + off)
                if rng.random() < 0.02:
                    mm.kernel.alloc(rng.choice((Source.SLAB_UNMOVABLE, Source.NETBUF)),
                                    rng.choice((0, 0, 1, 3)), 1 << 30, nid=nid)
            procs.append(p)
        f = mm.new_file(rng.randrange(64, 512), home_node=nid)
        for i in rng.sample(range(f.npages), f.npages // 2):
            f.read(i)
    for p in rng.sample(procs, len(procs) // 2):
        mm.exit(p)
    if rng.random() < 0.5:
        mm.pa.drain_all()
    mm.check()
    return mm
