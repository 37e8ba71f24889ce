"""MM-specific helpers (ids >= 1000) and the host environment they read.

Policy programs may ask the MM core a few questions through helpers: free
pages of a node, the distance between two nodes, free blocks of at least an
order, a process's RSS and huge pages, the current tick.  Each is a
:class:`~bpfvm.helpers.HelperSpec` whose implementation reads the MM state
through ``vm.env.mm``, so the engine running the program must be built with
an :class:`MmEnv` (the scenario runner does).  Unknown nodes or processes
give 0; the helpers never change MM state.

:func:`policy_helpers` is the standard table extended with these records:
pass it to the assembler (so ``call mm_node_free_pages`` resolves) and to the
loader.  This module does not decide which hook may call which helper: the
hook records in :mod:`bpfvm.hooks` do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bpfvm.helpers import Arg, HelperSpec, HelperTable, Ret
from bpfvm.stdhelpers import standard_helpers
from bpfvm.vmenv import VmEnv

if TYPE_CHECKING:
    from mmcore.mm import MM

TICK_NS = 1_000_000  # simulated time of one scenario tick (ktime_get_ns)


class MmEnv(VmEnv):
    """A :class:`~bpfvm.vmenv.VmEnv` whose clock is the MM's simulated time
    and which gives MM helpers access to the MM core."""

    def __init__(self, mm: MM, seed: int = 0) -> None:
        super().__init__(clock=lambda: mm.tick * TICK_NS, seed=seed)
        self.mm = mm


def _mm(vm: Any) -> MM:
    mm = getattr(vm.env, "mm", None)
    if mm is None:
        raise RuntimeError("MM helpers need an engine built with an mmcore MmEnv")
    return mm


def node_free_pages(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    mm = _mm(vm)
    return mm.pa.free_pages_node(r1) if r1 < len(mm.phys.nodes) else 0


def node_distance(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    dist = _mm(vm).phys.distance
    return dist[r1][r2] if r1 < len(dist) and r2 < len(dist) else 0


def free_blocks(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    mm = _mm(vm)
    if r1 >= len(mm.phys.nodes):
        return 0
    return sum(sum(z.nr_free[r2:]) for z in mm.phys.nodes[r1].zones)


def proc_rss(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    proc = _mm(vm).procs.get(r1)
    return proc.rss_pages if proc is not None else 0


def proc_huge(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    proc = _mm(vm).procs.get(r1)
    return proc.present[r2] if proc is not None and r2 in (1, 2) else 0


def tick(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _mm(vm).tick


_ANY = Arg.ANYTHING
MM_HELPER_SPECS: tuple[HelperSpec, ...] = (
    HelperSpec(1000, "mm_node_free_pages", (_ANY,), Ret.SCALAR, node_free_pages,
               "free pages on node r1 (0 for no such node)"),
    HelperSpec(1001, "mm_node_distance", (_ANY, _ANY), Ret.SCALAR, node_distance,
               "distance from node r1 to node r2 (10 local; 0 for no such node)"),
    HelperSpec(1002, "mm_free_blocks", (_ANY, _ANY), Ret.SCALAR, free_blocks,
               "free buddy blocks of order r2 or larger on node r1"),
    HelperSpec(1003, "mm_proc_rss", (_ANY,), Ret.SCALAR, proc_rss,
               "resident pages (4 KiB units) of process r1 (0 for no such process)"),
    HelperSpec(1004, "mm_proc_huge", (_ANY, _ANY), Ret.SCALAR, proc_huge,
               "huge pages of size r2 (1 = 2 MiB, 2 = 1 GiB) process r1 holds"),
    HelperSpec(1005, "mm_tick", (), Ret.SCALAR, tick, "the current scenario tick"),
)


def policy_helpers() -> HelperTable:
    """The standard helpers plus the MM helpers."""
    return standard_helpers().extended(MM_HELPER_SPECS)
