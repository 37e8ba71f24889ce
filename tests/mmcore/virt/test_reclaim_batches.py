"""Reclaim scans that settle the LRU lists once per scan against the
page-by-page scan (each page moved as it is reached) on randomized
machines: the frames, lists, counters and page tables must end the same."""

from __future__ import annotations

import random

import pytest

from mmcore.constants import MT, PAGEBLOCK_ORDER, SWAP_CLUSTER_MAX
from mmcore.virt.lru import NR_LRU, LruList, lid_of
from mmcore.virt.reclaim import SCAN_FACTOR, SWAP_CLUSTER_MAX_SKIPPED, TOP_ZONE, Reclaimer
from tests.mmcore.random_machines import random_mm

SEEDS = range(6)


class PerPageReclaimer(Reclaimer):
    """The scans moving each page between lists as they reach it."""

    def _skip(self, pfn: int, idx: int) -> bool:
        return self.zone_kind[self.mm.frames.pb_zone[pfn >> PAGEBLOCK_ORDER]] > idx

    def shrink_active(self, nid: int, active: int, nr: int, idx: int = TOP_ZONE) -> None:
        mm = self.mm
        lru, fr = mm.lru, mm.frames
        lid = lid_of(nid, active)
        pfn, visits, skipped, moved = lru.tail[lid], lru.entries[lid], 0, 0
        while moved < nr and pfn >= 0 and visits:
            visits -= 1
            prev = fr.prv[pfn]
            if idx < TOP_ZONE and skipped < SWAP_CLUSTER_MAX_SKIPPED and self._skip(pfn, idx):
                skipped += 1
                lru.move(pfn, lid)
            else:
                mm.owners[fr.owner[pfn]].referenced(pfn, fr.get_index(pfn))
                lru.move(pfn, lid - 1)
                moved += 1
            pfn = prev
        self.skipped += skipped

    def shrink_inactive(self, nid: int, inactive: int, nr: int, target: int,
                        idx: int = TOP_ZONE) -> tuple[int, int]:
        mm = self.mm
        lru, fr = mm.lru, mm.frames
        lid = lid_of(nid, inactive)
        reclaimed = scanned = skipped = 0
        eligible = lru.eligible(nid, inactive, idx)[1] if idx < TOP_ZONE else lru.entries[lid]
        budget = min(eligible, nr * SCAN_FACTOR)
        pfn, visits = lru.tail[lid], lru.entries[lid]
        while reclaimed < nr and scanned < budget and pfn >= 0 and visits:
            visits -= 1
            prev = fr.prv[pfn]
            if idx < TOP_ZONE and skipped < SWAP_CLUSTER_MAX_SKIPPED and self._skip(pfn, idx):
                skipped += 1
                lru.move(pfn, lid)
                pfn = prev
                continue
            scanned += 1
            owner_id = fr.owner[pfn]
            if target and owner_id != target:
                lru.move(pfn, lid)
                pfn = prev
                continue
            owner = mm.owners[owner_id]
            index, order = fr.get_index(pfn), fr.order[pfn]
            if inactive == LruList.INACTIVE_ANON and owner.referenced(pfn, index):
                lru.move(pfn, lid + 1)
            elif pfn in mm.pinned:
                self.unmap_fail += 1 << order
                lru.move(pfn, lid + 1)
            else:
                lru.remove(pfn)
                owner.evict(pfn, index, order)
                mm.pa.free(pfn)
                reclaimed += 1 << order
            pfn = prev
        self.skipped += skipped
        if self.balance == "cost":
            anon = inactive == LruList.INACTIVE_ANON
            mm.workingset.note_cost(nid, not anon, reclaimed if anon else 0, scanned - reclaimed)
        return reclaimed, scanned


def state(mm) -> tuple:
    fr, lru, rc = mm.frames, mm.lru, mm.reclaim
    arrays = tuple(fr.view(n).tobytes() for n in ("state", "order", "mt", "lru", "ref", "owner",
                                                    "index_lo", "index_hi", "nxt", "prv"))
    lists = tuple(list(x) for x in (lru.head, lru.tail, lru.count, lru.entries, lru.zone_count,
                                      lru.zone_entries))
    zones = tuple((tuple(z.heads), tuple(z.counts), z.free_pages, tuple(map(tuple, z.pcp)))
                  for z in mm.phys.zones)
    ws = mm.workingset
    procs = tuple((p.pid, p.swapped, tuple(p.present)) for p in mm.procs.values())
    files = tuple((f.fid, f.cached, f.pages.tobytes(), tuple(sorted(f.shadows.items())))
                  for f in mm.files.values())
    tables = bytes(b"".join(bytes(b) for p in mm.procs.values()
                            for _, b in sorted(p.pt.bufs.items())))
    return (arrays, tuple(map(tuple, lists)), zones, procs, files, tables,
            (rc.skipped, rc.unmap_fail, rc.reclaimed, tuple(rc.scanned)),
            (tuple(ws.age), tuple(ws.anon_cost), tuple(ws.file_cost)), str(mm.stats))


def run_scans(mm, cls, seed: int) -> list:
    mm.reclaim.__class__ = cls
    rc = mm.reclaim
    rng = random.Random(seed)
    out = []
    nodes = len(mm.phys.nodes)
    for _ in range(40):
        nid = rng.randrange(nodes)
        idx = rng.choice((0, TOP_ZONE, TOP_ZONE))
        kind = rng.randrange(4)
        if kind == 0:
            out.append(rc.shrink_node(nid, rng.choice((SWAP_CLUSTER_MAX, 200)),
                                      rng.choice((MT.MOVABLE, MT.UNMOVABLE))))
        elif kind == 1:
            rc.shrink_active(nid, rng.choice((LruList.ACTIVE_ANON, LruList.ACTIVE_FILE)),
                             rng.choice((8, SWAP_CLUSTER_MAX * SCAN_FACTOR, 10_000)), idx)
        else:
            target = rng.choice([0, 0, *sorted(mm.procs)[:3]])
            out.append(rc.shrink_inactive(
                nid, rng.choice((LruList.INACTIVE_ANON, LruList.INACTIVE_FILE)),
                rng.choice((1, SWAP_CLUSTER_MAX, 500)), target, idx))
        if rng.random() < 0.3:  # touch some pages again: referenced bits to find
            for p in rng.sample(sorted(mm.procs.values(), key=lambda p: p.pid),
                                min(2, len(mm.procs))):
                for v in p.vmas[:2]:
                    for va in range(v.start, min(v.end, v.start + (64 << 12)), 4096 * 3):
                        p.access(va)
    return out


@pytest.mark.parametrize("balance", ["cost", "fixed"])
@pytest.mark.parametrize("seed", SEEDS)
def test_settled_scans_match_the_page_by_page_scan(seed, balance):
    ref, bulk = random_mm(seed), random_mm(seed)
    for mm in (ref, bulk):
        mm.reclaim.balance = balance
    assert state(ref) == state(bulk)
    want = run_scans(ref, PerPageReclaimer, seed)
    got = run_scans(bulk, Reclaimer, seed)
    assert got == want
    assert state(bulk) == state(ref)
    assert bulk.stats.pgscan > 0 and bulk.reclaim.reclaimed > 0  # the runs reclaimed
    assert any(lid % NR_LRU == LruList.ACTIVE_ANON and c for lid, c in
               enumerate(bulk.lru.count))  # and activated
    bulk.check()
