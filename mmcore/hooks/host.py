"""The host environment answering the MM helpers (ids >= 1000).

Policy programs may ask the MM core a few questions through helpers: free
pages of a node, the distance between two nodes, free blocks of at least an
order, a process's RSS and huge pages, the current tick.  Each is a
:class:`~bpfvm.helpers.HelperSpec` whose implementation reads the MM state
by calling the method of its name on ``vm.env``: the engine running the
program must be built with an :class:`MmEnv` (the scenario runner does).
The records themselves are data in :mod:`mmcore.hooks.helpers`.  Unknown nodes or
processes give 0; the helpers never change MM state.

:func:`policy_helpers` is the standard table extended with these records:
pass it to the assembler (so ``call mm_node_free_pages`` resolves) and to the
loader.  This module does not decide which hook may call which helper: the
hook records in :mod:`mmcore.hooks.specs` do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpfvm.vmenv import VmEnv
from mmcore.hooks.helpers import MM_HELPER_SPECS, policy_helpers

if TYPE_CHECKING:
    from mmcore.mm import MM

TICK_NS = 1_000_000  # simulated time of one scenario tick (ktime_get_ns)


class MmEnv(VmEnv):
    """A :class:`~bpfvm.vmenv.VmEnv` whose clock is the MM's simulated time
    and which answers the MM helpers (:mod:`mmcore.hooks.helpers`) from the MM core."""

    def __init__(self, mm: MM, seed: int = 0) -> None:
        super().__init__(clock=lambda: mm.tick * TICK_NS, seed=seed)
        self.mm = mm

    def mm_node_free_pages(self, node: int) -> int:
        mm = self.mm
        return mm.pa.free_pages_node(node) if node < len(mm.phys.nodes) else 0

    def mm_node_distance(self, a: int, b: int) -> int:
        dist = self.mm.phys.distance
        return dist[a][b] if a < len(dist) and b < len(dist) else 0

    def mm_free_blocks(self, node: int, order: int) -> int:
        mm = self.mm
        if node >= len(mm.phys.nodes):
            return 0
        return sum(sum(z.nr_free[order:]) for z in mm.phys.nodes[node].zones)

    def mm_proc_rss(self, pid: int) -> int:
        proc = self.mm.procs.get(pid)
        return proc.rss_pages if proc is not None else 0

    def mm_proc_huge(self, pid: int, size: int) -> int:
        proc = self.mm.procs.get(pid)
        return proc.present[size] if proc is not None and size in (1, 2) else 0

    def mm_tick(self) -> int:
        return self.mm.tick


__all__ = ["MM_HELPER_SPECS", "MmEnv", "TICK_NS", "policy_helpers"]
