"""Workingset refault detection and the reclaim cost record of each node, as
``mm/workingset.c`` and ``lru_note_cost`` keep them.

Evicting a page-cache page leaves a shadow entry: a snapshot of its node's
``nonresident_age``, which ages by one per eviction and per activation
(``workingset_eviction``, ``workingset_activation``).  A read that misses on
a shadow is a refault (``workingset_refault``): its distance is the aging
since the eviction; when that is at most the workingset size (active file +
active anon + inactive anon, as ``workingset_test_recency`` counts for a file
page with swap available), the page goes straight to the active list, the
refault counts as an activation (which ends ``cache_trim_mode``) and as file
reclaim cost.  ``note_cost`` is ``lru_note_cost``: pages written out cost
``SWAP_CLUSTER_MAX`` each, rotations one, and both costs halve once they
exceed a quarter of the node's LRU pages.

Differences from Linux: file pages only (no swap-cache shadows for anon);
shadows are kept per file index without a shadow-node shrinker; no
``PG_workingset`` bit, so every activating refault counts as cost, not only
those of pages that were active before their eviction; no eviction-counter
bucketing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import SWAP_CLUSTER_MAX
from mmcore.virt.lru import LruList, lid_of

if TYPE_CHECKING:
    from mmcore.virt.lru import LruLists


class Workingset:
    """Per node: nonresident age, anon/file reclaim cost, refault counters."""

    def __init__(self, lru: LruLists, nodes: int, enabled: bool) -> None:
        self.lru = lru
        self.enabled = enabled  # shadows and refault activation ("cost" balance)
        self.age = [0] * nodes  # nonresident_age
        self.anon_cost = [0] * nodes
        self.file_cost = [0] * nodes
        self.activate = [0] * nodes  # WORKINGSET_ACTIVATE_FILE
        self.snapshot = [0] * nodes  # its value when reclaim last looked
        self.refaults = 0
        self.activations = 0

    def eviction(self, nid: int) -> int:
        """``workingset_eviction``: the shadow entry of a page evicted now."""
        return self.evictions(nid, 1)

    def evictions(self, nid: int, n: int) -> int:
        """:meth:`eviction` of ``n`` pages of node ``nid`` in turn: the
        first one's shadow entry (each next one's is one more)."""
        shadow = self.age[nid]
        self.age[nid] += n
        return shadow

    def activation(self, nid: int) -> None:
        """``workingset_activation``: a page-cache page was activated."""
        self.age[nid] += 1

    def size(self, nid: int) -> int:
        """The workingset a refaulting file page competes with."""
        c = self.lru.count
        return (c[lid_of(nid, LruList.ACTIVE_FILE)] + c[lid_of(nid, LruList.ACTIVE_ANON)]
                + c[lid_of(nid, LruList.INACTIVE_ANON)])

    def refault(self, nid: int, shadow: int) -> bool:
        """``workingset_refault``: whether the refaulting page is activated."""
        self.refaults += 1
        if self.age[nid] - shadow > self.size(nid):
            return False
        self.age[nid] += 1
        self.activate[nid] += 1
        self.activations += 1
        self.note_cost(nid, True, 1, 0)  # lru_note_cost_refault
        return True

    def thrashing(self, nid: int) -> bool:
        """File refaults activated since reclaim last took its snapshot."""
        return self.activate[nid] != self.snapshot[nid]

    def take_snapshot(self, nid: int) -> None:
        """``snapshot_refaults``, at the end of a reclaim pass."""
        self.snapshot[nid] = self.activate[nid]

    def note_cost(self, nid: int, file: bool, nr_io: int, nr_rotated: int) -> None:
        """``lru_note_cost``."""
        cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated
        if file:
            self.file_cost[nid] += cost
        else:
            self.anon_cost[nid] += cost
        lru_pages = sum(self.lru.node_counts(nid))
        if self.file_cost[nid] + self.anon_cost[nid] > lru_pages // 4:
            self.file_cost[nid] //= 2
            self.anon_cost[nid] //= 2
