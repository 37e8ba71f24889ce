"""Metrics of an MM instance as one JSON-able dict.

Per zone: free blocks per order, the unusable-free-space and fragmentation
indices per order (thousandths, as /sys/kernel/debug/extfrag prints them
times 1000), pageblocks by migratetype and pageblocks holding at least one
unmovable (non-movable) page.  Global: faults, huge-page attempts and
successes, compaction, reclaim (with the movable/unmovable pressure split
and the pages skipped for lying above an allocation's zone index), OOM
kills, swap, TLB and walk references, page-table memory, allocator and hook
counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mmcore.constants import MT, NR_ORDERS, PAGEBLOCK_ORDER, FrameState
from mmcore.phys.fragmentation import (
    fragmentation_index,
    fragmentation_score_zone,
    unusable_free_index,
)
from mmcore.phys.physmem import Zone, pageblocks_covered

if TYPE_CHECKING:
    from mmcore.mm import MM


def unmovable_pageblocks(mm: MM) -> np.ndarray:
    """Boolean per pageblock: holds at least one non-movable allocated page."""
    fr = mm.frames
    st, mt, order = fr.view("state"), fr.view("mt"), fr.view("order")
    heads = np.flatnonzero((st == FrameState.ALLOC) & (mt != MT.MOVABLE))
    return pageblocks_covered(heads, order[heads], len(fr.pb_mt))


def zone_metrics(mm: MM, z: Zone, unmov: np.ndarray) -> dict[str, Any]:
    lo, hi = z.start >> PAGEBLOCK_ORDER, z.end >> PAGEBLOCK_ORDER
    pb = np.frombuffer(mm.frames.pb_mt, dtype=np.uint8)[lo:hi]
    by_mt = np.bincount(pb, minlength=len(MT))
    return {
        "managed_pages": z.managed,
        "free_pages": z.free_pages,
        "pcp_pages": z.pcp_pages(),
        "watermarks": [z.wmark_min, z.wmark_low, z.wmark_high],
        "free_blocks": list(z.nr_free),
        "unusable_index": [unusable_free_index(z.nr_free, o) for o in range(NR_ORDERS)],
        "extfrag_index": [fragmentation_index(z.nr_free, o) for o in range(NR_ORDERS)],
        "fragmentation_score": fragmentation_score_zone(z.nr_free),
        "pageblocks": hi - lo,
        "pageblocks_by_mt": {m.name.lower(): int(by_mt[m]) for m in MT},
        "pageblocks_unmovable_pages": int(unmov[lo:hi].sum()),
    }


def collect(mm: MM) -> dict[str, Any]:
    s = mm.stats
    unmov = unmovable_pageblocks(mm)
    procs = list(mm.procs.values())
    tlb_hits = s.tlb_hits + sum(p.tlb.hits for p in procs)
    tlb_misses = s.tlb_misses + sum(p.tlb.misses for p in procs)
    a = mm.pa.stats
    return {
        "tick": mm.tick,
        "zones": {z.name: zone_metrics(mm, z, unmov) for z in mm.phys.zones},
        "pageblocks_total": len(unmov),
        "pageblocks_unmovable_pages": int(unmov.sum()),
        "faults": s.faults,
        "major_faults": s.major_faults,
        "oom": s.oom,
        "oom_kills": len(mm.oom.kills),
        "oom_killed_pages": mm.oom.pages_freed,
        "spawn_failures": s.spawn_failures,
        "huge_2m": {"attempts": s.huge_attempts[1], "successes": s.huge_success[1]},
        "huge_1g": {"attempts": s.huge_attempts[2], "successes": s.huge_success[2]},
        "thp_splits": s.thp_splits,
        "compaction": {
            "runs": mm.compaction.runs,
            "successes": mm.compaction.successes,
            "pages_migrated": mm.compaction.migrated,
            "proactive_runs": mm.compaction.proactive_runs,
            "deferred": mm.compaction.deferred,
            "not_suitable": mm.compaction.not_suitable,
            "isolate_failed": mm.compaction.isolate_failed,
            "skip_resets": mm.compaction.skip_resets,
            "pinned_pages": len(mm.pinned),
        },
        "kcompactd": mm.compaction.kcompactd.metrics(),
        "hugetlb": mm.hugetlb.metrics(),
        "khugepaged": mm.khugepaged.metrics(),
        "reclaim": {
            "scanned": s.pgscan,
            "reclaimed": s.pgsteal,
            "scanned_for_movable": mm.reclaim.scanned[1],
            "scanned_for_unmovable": mm.reclaim.scanned[0],
            "skipped_ineligible_zone": mm.reclaim.skipped,
            "pinned_kept": mm.reclaim.unmap_fail,
            "kswapd_runs": mm.reclaim.kswapd_runs,
            "kswapd_high_order_runs": mm.reclaim.high_order_runs,
            "kswapd_order_drops": mm.reclaim.order_drops,
            "kswapd_wakeups_balanced": mm.reclaim.balanced_wakeups,
            "swap_out": s.swapouts,
            "swap_in": s.swapins,
            "file_evictions": s.file_evictions,
        },
        "alloc": {
            "slowpath": a.slow,
            "failed": a.failed,
            "direct_reclaim": a.direct_reclaims,
            "direct_compaction": a.direct_compactions,
            "after_oom_kill": a.oom_retries,
            "fallback_steals": mm.pa.steals,
            "pageblock_claims": mm.pa.claims,
        },
        "tlb": {
            "hits": tlb_hits,
            "misses": tlb_misses,
            "walks": s.walks,
            "walk_refs": s.walk_refs,
            "refs_per_walk": round(s.walk_refs / s.walks, 3) if s.walks else 0.0,
        },
        "page_table_pages": mm.page_table_pages(),
        "page_table_bytes": mm.page_table_pages() * 4096,
        "processes": len(procs),
        "rss_pages": sum(p.rss_pages for p in procs),
        "pagecache_pages": sum(f.cached for f in mm.files.values()),
        "kernel_pages": mm.kernel.live_pages(),
        "region_pages": mm.regions.pages(),
        "zone_resizes": s.zone_resizes,
        "pageblocks_moved": s.pageblocks_moved,
        "hooks": mm.hooks.stats(),
        **_optional(mm),
    }


def _optional(mm: MM) -> dict[str, Any]:
    """Metrics of mechanisms a scenario opts into: slab objects (when any
    were allocated) and workingset refaults (the "cost" scan balance)."""
    out: dict[str, Any] = {}
    slab = mm.slab
    if slab.seq:
        caches = slab.stats()
        cap = sum(c["capacity"] for c in caches.values())
        out["slab"] = {
            "objects": len(slab.objects),
            "pages": sum(c["pages"] for c in caches.values()),
            "utilization": round(len(slab.objects) / cap, 4) if cap else None,
            "objects_shrunk": slab.shrunk,
            "pages_freed": slab.pages_freed,
            "failures": slab.failures,
            "caches": caches,
        }
    ws = mm.workingset
    if ws.enabled:
        out["workingset"] = {
            "refaults": ws.refaults,
            "activations": ws.activations,
            "cache_trim_passes": mm.reclaim.trim_passes,
            "anon_cost": sum(ws.anon_cost),
            "file_cost": sum(ws.file_cost),
        }
    return out
