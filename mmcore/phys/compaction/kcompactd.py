"""kcompactd, one per node (``kcompactd``, ``wakeup_kcompactd``,
``kcompactd_do_work``, ``proactive_compact_node``).

kswapd wakes it when it goes to sleep after balancing a node for a
high-order request (order 0 balanced, the block of the order still
missing), if some zone of the node is suitable for compaction
(``kcompactd_node_suitable``).  A woken kcompactd compacts each zone up to
the waker's zone index in SYNC_LIGHT mode, honouring and updating deferral.
Without a wakeup it times out every ``interval`` ticks (Linux:
``HPAGE_FRAG_CHECK_INTERVAL_MSEC``, 500 ms) and runs proactive compaction
when the node's fragmentation score is above the high mark of
``compaction_proactiveness`` and kswapd is not running; a proactive pass
that did not lower the score defers the next ``1 << COMPACT_MAX_DEFER_SHIFT``
checks, as Linux's ``proactive_defer``.

Differences from Linux: kcompactd runs synchronously after kswapd at the
end of a tick, not as a thread; the timeout counts from the last run of
either kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import ZoneKind
from mmcore.phys.compaction.control import (
    COMPACT_MAX_DEFER_SHIFT,
    Mode,
    Result,
    compaction_defer_reset,
    compaction_deferred,
    compaction_suitable,
    defer_compaction,
)
from mmcore.phys.fragmentation import fragmentation_score_node, fragmentation_score_wmark

if TYPE_CHECKING:
    from mmcore.phys.compaction.zone import Compactor


class Kcompactd:
    """The kcompactd threads of all nodes, with per-node counters."""

    def __init__(self, compactor: Compactor, interval: int) -> None:
        self.c = compactor
        self.interval = interval
        n = len(compactor.mm.phys.nodes)
        self.pending: dict[int, list[int]] = {}  # nid -> [order, highest zone index]
        self.wakeups = [0] * n
        self.runs = [0] * n
        self.migrated = [0] * n
        self.successes = [0] * n
        self.failures = [0] * n
        self.proactive_passes = [0] * n
        self.proactive_deferred = [0] * n
        self._defer = [0] * n  # proactive_defer
        self._last = [0] * n

    # --- wakeup ------------------------------------------------------------
    def node_suitable(self, nid: int, order: int, classzone: int) -> bool:
        """``kcompactd_node_suitable``: a zone where the block is missing and
        compaction could make it."""
        c, pa = self.c, self.c.mm.pa
        return any(
            z.managed and z.kind <= classzone
            and not pa.watermark_ok(z, order, z.wmark_min, classzone)
            and compaction_suitable(z, order, classzone, c.extfrag_threshold)
            for z in c.mm.phys.nodes[nid].zones
        )

    def wake(self, nid: int, order: int, classzone: int = ZoneKind.MOVABLE) -> None:
        """``wakeup_kcompactd``."""
        if order <= 0 or not self.node_suitable(nid, order, classzone):
            return
        self.wakeups[nid] += 1
        p = self.pending.get(nid)
        if p is None:
            self.pending[nid] = [order, classzone]
        else:
            p[0], p[1] = max(p[0], order), max(p[1], classzone)

    # --- work --------------------------------------------------------------
    def do_work(self, nid: int, order: int, classzone: int) -> None:
        """``kcompactd_do_work``."""
        c = self.c
        pa = c.mm.pa
        self.runs[nid] += 1
        before = c.migrated
        for z in c.mm.phys.nodes[nid].zones:
            if not z.managed or z.kind > classzone:
                continue
            d = c.defer[z.zid]
            if compaction_deferred(d, order):
                continue
            if pa.watermark_ok(z, order, z.wmark_min, classzone) or not compaction_suitable(
                    z, order, classzone, c.extfrag_threshold):
                continue
            result = c.compact_zone(z, order, mode=Mode.SYNC_LIGHT)
            if result == Result.SUCCESS:
                compaction_defer_reset(d, order, False)
                self.successes[nid] += 1
            elif result == Result.COMPLETE:
                defer_compaction(d, order)
                self.failures[nid] += 1
        self.migrated[nid] += c.migrated - before

    def node_score(self, nid: int) -> int:
        node = self.c.mm.phys.nodes[nid]
        zones = [(z.managed, z.nr_free) for z in node.zones if z.managed]
        return fragmentation_score_node(zones, node.end - node.start)

    def should_proactive_compact(self, nid: int) -> bool:
        c = self.c
        if not c.proactiveness or nid in c.mm.reclaim.pending:
            return False
        return self.node_score(nid) > fragmentation_score_wmark(c.proactiveness, False)

    def proactive(self, nid: int) -> int:
        """One proactive check of ``nid``; return the zones compacted."""
        if not self.should_proactive_compact(nid):
            return 0
        if self._defer[nid]:
            self._defer[nid] -= 1
            self.proactive_deferred[nid] += 1
            return 0
        c = self.c
        prev = self.node_score(nid)
        before = c.migrated
        self.proactive_passes[nid] += 1
        n = 0
        for z in c.mm.phys.nodes[nid].zones:
            if z.managed:
                c.proactive_runs += 1
                c.compact_zone(z, -1, proactive=True)
                n += 1
        self.migrated[nid] += c.migrated - before
        self._defer[nid] = 0 if self.node_score(nid) < prev else 1 << COMPACT_MAX_DEFER_SHIFT
        return n

    def proactive_all(self) -> int:
        return sum(self.proactive(node.nid) for node in self.c.mm.phys.nodes)

    def run(self, tick: int) -> None:
        """What each node's kcompactd does this tick: woken work, else a
        proactive check when its timeout has passed."""
        for node in self.c.mm.phys.nodes:
            nid = node.nid
            p = self.pending.pop(nid, None)
            if p is not None:
                self.do_work(nid, p[0], p[1])
                self._last[nid] = tick
            elif tick - self._last[nid] >= self.interval:
                self._last[nid] = tick
                self.proactive(nid)

    def metrics(self) -> dict[str, list[int]]:
        return {
            "wakeups": self.wakeups, "runs": self.runs, "pages_migrated": self.migrated,
            "successes": self.successes, "failures": self.failures,
            "proactive_passes": self.proactive_passes,
            "proactive_deferred": self.proactive_deferred,
        }
