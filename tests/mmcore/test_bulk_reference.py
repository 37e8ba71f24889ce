"""The bulk (numpy) scans against straightforward per-page references on
randomized machines (several nodes and zones, fragmented, pinned pages):
the compaction scanners must leave bit-identical frames and counters, the
list checks must accept and reject the same states as walking the links,
and the metrics' and hugetlb's range scans must agree page by page."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mmcore.constants import MT, NR_MT, NR_ORDERS, PAGEBLOCK_ORDER, PAGEBLOCK_PAGES, FrameState
from mmcore.errors import InvariantError
from mmcore.invariants.frames import FrameView
from mmcore.invariants.lists import check_free_lists, check_lru
from mmcore.metrics import unmovable_pageblocks
from mmcore.phys.buddy import ALLOC, BUDDY, TAIL
from mmcore.phys.compaction import scan
from mmcore.phys.compaction.control import Mode, Result
from mmcore.phys.compaction.migrate import migrate
from mmcore.phys.compaction.zone import Compactor
from mmcore.phys.fragmentation import fragmentation_score_wmark, fragmentation_score_zone
from mmcore.phys.hugetlb import HUGETLB_OWNER
from mmcore.phys.physmem import Zone
from mmcore.phys.zone_resize import pinned_pageblocks
from tests.mmcore.random_machines import random_mm

SEEDS = range(4)


class PerPageCompactor(Compactor):
    """Compaction with scanners that walk every pageblock page by page."""

    def compact_zone(
        self, z: Zone, order: int, target: Zone | None = None, proactive: bool = False,
        mode: Mode = Mode.SYNC_LIGHT, mt: int = MT.MOVABLE, direct: bool = False,
    ) -> Result:
        """Compact ``z`` for a block of ``order`` (-1: proactive/whole zone).

        With ``target``, movable pages go to free pages of that zone instead.
        Returns SUCCESS when the goal was reached, else COMPLETE.
        """
        mm = self.mm
        pa, fr = mm.pa, mm.frames
        tz = target if target is not None else z
        if not z.managed or not tz.managed:
            return Result.SKIPPED
        self.runs += 1
        pa.drain_all([z, tz])
        st, ordr, fmt, owner, pb_mt = fr.state, fr.order, fr.mt, fr.owner, fr.pb_mt
        owners, pinned, skip = mm.owners, mm.pinned, self.skip
        use_skip = mode != Mode.SYNC and not proactive and target is None
        async_direct = direct and mode == Mode.ASYNC
        chunk = 1 << max(order, 0)
        wmark_low = fragmentation_score_wmark(self.proactiveness, True)
        free_pages: list[int] = []
        migrate_pfn, free_pfn = z.start, tz.end - PAGEBLOCK_PAGES
        same = tz is z
        ok = False

        def finished() -> bool:
            if not same and order < 0:
                return False  # an evacuation scans the whole source zone
            if proactive or order < 0:
                return fragmentation_score_zone(z.nr_free) <= wmark_low
            return any(z.nr_free[o] for o in range(order, NR_ORDERS))

        def isolate_free() -> bool:
            nonlocal free_pfn
            floor = migrate_pfn if same else tz.start  # migrate_pfn: end of its block
            while free_pfn >= floor:
                p, end = free_pfn, free_pfn + PAGEBLOCK_PAGES
                pb = p >> PAGEBLOCK_ORDER
                free_pfn -= PAGEBLOCK_PAGES
                if use_skip and skip[pb]:
                    continue
                if pb_mt[pb] != MT.MOVABLE and same:
                    continue  # suitable_migration_target
                got = len(free_pages)
                while p < end:
                    s, o = st[p], ordr[p]
                    if s == BUDDY and o < PAGEBLOCK_ORDER:
                        pa._del(tz, p)
                        free_pages.extend(range(p, p + (1 << o)))
                    p += 1 << o if s in (BUDDY, ALLOC) else 1
                if len(free_pages) > got:
                    return True
                if use_skip:
                    skip[pb] = 1
            return False

        def chunk_blocked(p: int, end: int) -> bool:
            """An order-aligned chunk holding a page isolation must fail on."""
            while p < end:
                s, o = st[p], ordr[p]
                if s == ALLOC and (o or fmt[p] != MT.MOVABLE or p in pinned
                                   or not owners.get(owner[p])):
                    return True
                p += 1 << o if s in (BUDDY, ALLOC) else 1
            return False

        while True:
            if finished():
                ok = True
                break
            if migrate_pfn >= z.end or (same and free_pfn <= migrate_pfn):
                break
            p, end = migrate_pfn, migrate_pfn + PAGEBLOCK_PAGES
            pb = p >> PAGEBLOCK_ORDER
            migrate_pfn = end
            if use_skip and skip[pb]:
                continue  # isolation_suitable
            if async_direct and pb_mt[pb] != mt:
                continue  # suitable_migration_source
            stuck = False
            moved = 0
            chunk_end = p
            while p < end:
                if async_direct and p >= chunk_end:
                    chunk_end = p + chunk
                    if chunk_blocked(p, chunk_end):
                        self.isolate_failed += 1
                        p = chunk_end
                        continue
                s, o = st[p], ordr[p]
                if s == ALLOC and o == 0 and fmt[p] == MT.MOVABLE and owners.get(owner[p]):
                    self.scanned += 1
                    if p in pinned:
                        self.isolate_failed += 1
                    else:
                        if not free_pages and not isolate_free():
                            stuck = True
                            break
                        dst = free_pages.pop()
                        migrate(mm, p, dst)
                        self.migrated += 1
                        moved += 1
                p += 1 << o if s in (BUDDY, ALLOC) else 1
            if stuck:
                break
            if not moved and use_skip:
                skip[pb] = 1
        for p in free_pages:  # release unused targets
            st[p] = TAIL
            pa.free_one(tz, p, 0, pb_mt[p >> PAGEBLOCK_ORDER])
        if ok:
            self.successes += 1
            return Result.SUCCESS
        if use_skip:  # the scanners met (or ran dry) without success
            if direct:
                self.flush[z.zid] = True
            else:
                self.reset_skip(z)
        return Result.COMPLETE


def frames_state(mm) -> tuple:
    fr = mm.frames
    c = mm.compaction
    arrays = tuple(fr.view(n).tobytes() for n in ("state", "order", "mt", "lru", "owner",
                                                    "index_lo", "index_hi", "nxt", "prv"))
    zones = tuple((tuple(z.heads), tuple(z.counts), z.free_pages) for z in mm.phys.zones)
    return arrays + zones + (bytes(fr.pb_mt), bytes(c.skip), c.migrated, c.scanned,
                             c.isolate_failed, c.runs, c.successes, tuple(c.flush))


def run_compactions(mm, compactor_cls, seed: int) -> list:
    """A mix of compaction runs, each mode and target, the same for a seed."""
    c = mm.compaction
    c.__class__ = compactor_cls
    rng = random.Random(seed)
    results = []
    for _ in range(6):
        z = rng.choice([z for z in mm.phys.zones if z.managed])
        kind = rng.randrange(5)
        if kind == 0:
            results.append(c.compact_zone(z, rng.choice((3, 9)), mode=Mode.ASYNC,
                                          mt=rng.choice((0, 1)), direct=True))
        elif kind == 1:
            results.append(c.compact_zone(z, rng.choice((2, 9)), mode=Mode.SYNC_LIGHT,
                                          direct=True))
        elif kind == 2:
            results.append(c.compact_zone(z, 9, mode=Mode.SYNC))
        elif kind == 3:
            c.proactiveness = rng.choice((20, 100))
            results.append(c.compact_zone(z, -1, proactive=True))
        else:
            # another zone of the node, as Contiguitas evacuates (LRU lists are per node)
            others = [t for t in mm.phys.nodes[z.nid].zones if t.managed and t is not z]
            if others:
                results.append(c.compact_zone(z, -1, target=rng.choice(others)))
    return results


@pytest.mark.parametrize("window", [2 * PAGEBLOCK_PAGES, scan.WINDOW])
@pytest.mark.parametrize("seed", SEEDS)
def test_compaction_scanners_match_the_per_page_walk(seed, window, monkeypatch):
    monkeypatch.setattr(scan, "WINDOW", window)
    ref, bulk = random_mm(seed), random_mm(seed)
    assert frames_state(ref) == frames_state(bulk)
    want = run_compactions(ref, PerPageCompactor, seed)
    got = run_compactions(bulk, Compactor, seed)
    assert got == want
    assert frames_state(bulk) == frames_state(ref)
    assert bulk.compaction.migrated > 0  # the comparison covered migrations
    bulk.check()


def list_outcome(check, mm) -> str:
    try:
        check(mm)
    except InvariantError:
        return "rejected"
    return "accepted"


def corrupt(mm, rng: random.Random) -> None:
    """One random damage to the free or LRU list links or counts."""
    fr = mm.frames
    buddy = np.flatnonzero(fr.view("state") == FrameState.BUDDY)
    marked = np.flatnonzero(fr.view("lru"))
    kind = rng.randrange(6)
    pool = buddy if kind < 3 or not marked.size else marked
    p = int(rng.choice(pool.tolist()))
    other = int(rng.choice(pool.tolist()))
    if kind in (0, 3):
        fr.nxt[p] = other  # may close a cycle or jump lists
    elif kind in (1, 4):
        fr.prv[p] = other
    elif kind == 2:
        z = rng.choice(mm.phys.zones)
        z.heads[rng.randrange(NR_ORDERS * NR_MT)] = other
    else:
        mm.lru.tail[rng.randrange(len(mm.lru.tail))] = other


@pytest.mark.parametrize("seed", SEEDS)
def test_list_checks_agree_with_walking_the_links(seed):
    mm = random_mm(seed)
    rng = random.Random(seed)
    assert list_outcome(lambda m: bulk_lists(m), mm) == "accepted"
    outcomes = set()
    for _ in range(12):
        fr = mm.frames
        saved = (fr.view("nxt").copy(), fr.view("prv").copy(),
                 [list(z.heads) for z in mm.phys.zones], list(mm.lru.tail))
        corrupt(mm, rng)
        want = "rejected" if "rejected" in (list_outcome(walk_free_lists, mm),
                                            list_outcome(walk_lru, mm)) else "accepted"
        assert list_outcome(bulk_lists, mm) == want
        outcomes.add(want)
        fr.view("nxt")[:], fr.view("prv")[:] = saved[0], saved[1]
        for z, h in zip(mm.phys.zones, saved[2], strict=True):
            for k, head in enumerate(h):
                z.heads[k] = head
        for k, tail in enumerate(saved[3]):
            mm.lru.tail[k] = tail
    assert "rejected" in outcomes  # the corruptions were seen


def _fail(msg: str) -> None:
    raise InvariantError(msg)


def walk(fr, head: int) -> list[int]:
    """The pfns linked from ``head``; a list longer than memory has a cycle."""
    out, p = [], head
    while p >= 0:
        if len(out) > fr.n:
            _fail("a list runs in a cycle")
        out.append(p)
        p = fr.nxt[p]
    return out


def bulk_lists(mm) -> None:
    v = FrameView(mm)
    check_free_lists(mm, v)
    check_lru(mm, v)


@pytest.mark.parametrize("seed", SEEDS)
def test_unmovable_pageblocks_match_a_per_page_scan(seed):
    mm = random_mm(seed)
    fr = mm.frames
    want = np.zeros(len(fr.pb_mt), dtype=bool)
    p = 0
    while p < fr.n:
        size = 1 << fr.order[p] if fr.state[p] != TAIL else 1
        if fr.state[p] == ALLOC and fr.mt[p] != MT.MOVABLE:
            for q in range(p, p + size):
                want[q >> PAGEBLOCK_ORDER] = True
        p += size
    got = unmovable_pageblocks(mm)
    assert want.any() and (got == want).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_pinned_pageblocks_of_a_range_match_a_per_page_scan(seed):
    mm = random_mm(seed)
    fr = mm.frames
    for z in mm.phys.zones:
        lo, hi = z.start, z.end
        want = [False] * ((hi - lo) >> PAGEBLOCK_ORDER)
        for p in range(lo, hi):
            if fr.state[p] == ALLOC and fr.mt[p] != MT.MOVABLE:
                for q in range(p, min(p + (1 << fr.order[p]), hi)):
                    want[(q - lo) >> PAGEBLOCK_ORDER] = True
        assert pinned_pageblocks(mm, lo, hi).tolist() == want


@pytest.mark.parametrize("seed", SEEDS)
def test_contig_range_check_matches_a_per_page_scan(seed, monkeypatch):
    mm = random_mm(seed)
    # ranges of 512 frames: each machine has several, some free, some not
    monkeypatch.setattr("mmcore.phys.hugetlb.GIGANTIC", PAGEBLOCK_PAGES)
    fr = mm.frames
    outcomes = []
    for base in range(0, fr.n, PAGEBLOCK_PAGES):
        want = base not in mm.hugetlb.pages and all(
            fr.state[p] != ALLOC or (fr.mt[p] == MT.MOVABLE and fr.owner[p] != HUGETLB_OWNER)
            for p in range(base, base + PAGEBLOCK_PAGES))
        assert mm.hugetlb._valid_range(base) == want
        outcomes.append(want)
    assert True in outcomes and False in outcomes


def walk_free_lists(mm) -> None:
    fr = mm.frames
    st = fr.view("state")
    for z in mm.phys.zones:
        nr_free = [0] * NR_ORDERS
        pages = 0
        for order in range(NR_ORDERS):
            for mt in range(NR_MT):
                n, prev, p = 0, -1, z.heads[order * NR_MT + mt]
                while p >= 0:
                    if n > fr.n:
                        _fail("a free list runs in a cycle")
                    if st[p] != FrameState.BUDDY or fr.order[p] != order or fr.mt[p] != mt:
                        _fail(f"{z.name}: list ({order},{mt}) holds pfn {p:#x} in wrong state")
                    if fr.prv[p] != prev:
                        _fail(f"{z.name}: broken prev link at pfn {p:#x}")
                    if not (z.start <= p and p + (1 << order) <= z.end) or p & ((1 << order) - 1):
                        _fail(f"{z.name}: free block {p:#x}/{order} misplaced")
                    n += 1
                    prev, p = p, fr.nxt[p]
                want = z.counts[order * NR_MT + mt]
                if n != want:
                    _fail(f"{z.name}: list ({order},{mt}) has {n} blocks, count says {want}")
                nr_free[order] += n
                pages += n << order
        if nr_free != list(z.nr_free) or pages != z.free_pages:
            _fail(f"{z.name}: nr_free/free_pages disagree with the lists")
        in_zone = st[z.start : z.end]
        if int((in_zone == FrameState.BUDDY).sum()) != sum(nr_free):
            _fail(f"{z.name}: BUDDY frames not all on free lists")
        pcp = [p for lst in z.pcp for p in lst]
        if any(st[p] != FrameState.PCP or not z.start <= p < z.end for p in pcp) or len(
            set(pcp)
        ) != len(pcp):
            _fail(f"{z.name}: bad pcp list entry")
        if int((in_zone == FrameState.PCP).sum()) != len(pcp):
            _fail(f"{z.name}: PCP frames not all on pcp lists")


def walk_lru(mm) -> None:
    fr, lru = mm.frames, mm.lru
    listed = 0
    for lid in range(len(lru.head)):
        pages = walk(fr, lru.head[lid])
        if len(pages) != lru.entries[lid]:
            _fail(f"lru {lid}: {len(pages)} entries, count says {lru.entries[lid]}")
        if sum(1 << fr.order[p] for p in pages) != lru.count[lid]:
            _fail(f"lru {lid}: page count mismatch")
        if lru.tail[lid] != (pages[-1] if pages else -1):
            _fail(f"lru {lid}: tail mismatch")
        for prev, p in zip([-1, *pages], pages, strict=False):
            if fr.prv[p] != prev:
                _fail(f"lru {lid}: broken prev link at pfn {p:#x}")
            if fr.lru[p] != lid + 1 or fr.state[p] != FrameState.ALLOC:
                _fail(f"lru {lid}: pfn {p:#x} not an allocated page of this list")
        listed += len(pages)
    if listed != int((fr.view("lru") != 0).sum()):
        _fail("frames marked on an LRU list that no list holds")
