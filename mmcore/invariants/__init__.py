"""Invariants of MM state, for ``--check``: a full check, and an incremental
one cheap enough for every tick.

The incremental check (:meth:`Checker.tick`) runs every bulk check over the
frame arrays (:mod:`~mmcore.invariants.frames`: tiling, free counters,
merged buddies, pageblocks, LRU membership and per-source accounting), TLB
coherence and slab accounting (:mod:`~mmcore.invariants.owners`), and
checks the PTE of only those anon frames whose owner, index, order or state
changed since the last check (found by comparing the frame arrays with a
copy taken then: the dirty set costs the mutating paths nothing).  The full
check (:func:`check_all`, every ``check_interval`` ticks and after the last)
adds every anon frame's PTE (a page-table lookup each, the one per-page
Python part) and the links of the free and LRU lists
(:mod:`~mmcore.invariants.lists`, read in bulk).

A failure raises :class:`~mmcore.errors.InvariantError` naming the kind of
fact broken and where.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmcore.constants import FrameState
from mmcore.invariants.frames import FrameView, check_frames
from mmcore.invariants.lists import check_free_lists, check_lru
from mmcore.invariants.owners import check_anon_frames, check_files, check_slab, check_tlbs

if TYPE_CHECKING:
    from mmcore.mm import MM

_TRACKED = ("state", "order", "owner", "index_lo", "index_hi")


def check_all(mm: MM) -> FrameView:
    """Every invariant, over all of memory."""
    v = check_frames(mm)
    check_anon_frames(mm, v, v.alloc)
    check_files(mm, v)
    check_tlbs(mm, v)
    check_slab(mm, v)
    check_free_lists(mm, v)
    check_lru(mm, v)
    return v


class Checker:
    """``--check`` for a run: :meth:`tick` after every tick, :meth:`full`
    every ``interval`` ticks; counts the checks of each kind."""

    def __init__(self, mm: MM, interval: int = 64) -> None:
        self.mm, self.interval = mm, interval
        self._copy: dict[str, np.ndarray] | None = None
        self.full_checks = 0
        self.tick_checks = 0

    def _snapshot(self) -> None:
        fr = self.mm.frames
        self._copy = {name: fr.view(name).copy() for name in _TRACKED}

    def full(self) -> None:
        self.mm.check()  # check_all and the mechanisms' own checks (pool, skip bits, ...)
        self._snapshot()
        self.full_checks += 1

    def tick(self) -> None:
        mm = self.mm
        if self._copy is None:
            self.full()
            return
        v = check_frames(mm)
        fr = mm.frames
        changed = np.zeros(fr.n, dtype=bool)
        for name, old in self._copy.items():
            cur = fr.view(name)
            changed |= cur != old
            old[:] = cur
        dirty = np.nonzero(changed)[0]
        dirty = dirty[v.st[dirty] == FrameState.ALLOC]
        check_anon_frames(mm, v, dirty)
        check_files(mm, v)
        check_tlbs(mm, v)
        check_slab(mm, v)
        mm.hugetlb.check()
        self.tick_checks += 1

    def after(self, t: int, last: bool) -> None:
        """The check after tick ``t`` (``last``: the run's final tick)."""
        if last or t % self.interval == 0:
            self.full()
        else:
            self.tick()
