"""The OOM killer (mm/oom_kill.c): when reclaim and compaction fail for an
allocation that must succeed, ``out_of_memory`` kills the process with the
highest ``oom_badness`` and its memory is freed.

``oom_badness`` is the process's resident pages plus its swap entries plus
its page-table pages, plus ``oom_score_adj * totalpages / 1000``; a process
whose ``oom_score_adj`` is ``OOM_SCORE_ADJ_MIN`` is never chosen, and ties go
to the process found first (the lowest pid), as ``select_bad_process``
keeps the first of equal scores.  ``totalpages`` is the machine's memory
(there is no swap size in the model).

A victim other than the faulting process is torn down at once (what the
oom_reaper and the victim's exit do).  When the victim is the process whose
fault is allocating (``MM.current``), it is marked: the allocation fails,
as ``__alloc_pages_slowpath`` gives up for an OOM victim, and the process
exits when its fault returns.  While a marked victim has not exited no
other process is killed (``oom_evaluate_task`` aborts on a pending victim).

Differences from Linux: no cpuset/mempolicy/memcg constraint (always
``CONSTRAINT_NONE``); nothing killable makes the allocation fail instead of
a panic; the kill is synchronous (no MMF_OOM_SKIP wait); one victim per
failing allocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmcore.mm import MM
    from mmcore.virt.process import Process

OOM_SCORE_ADJ_MIN = -1000
OOM_SCORE_ADJ_MAX = 1000


@dataclass(frozen=True)
class OomKill:
    """One kill: when, whom, its score and the pages it held."""

    tick: int
    pid: int
    points: int
    rss_pages: int
    swap_pages: int
    pgtable_pages: int
    order: int  # of the allocation that failed
    mt: int


def oom_badness(proc: Process, totalpages: int) -> int | None:
    """``oom_badness``: the process's score, or None when it may not be killed."""
    adj = proc.oom_score_adj
    if adj == OOM_SCORE_ADJ_MIN or not proc.alive or proc.oom_victim:
        return None
    points = proc.rss_pages + proc.swapped + proc.pt.table_pages()
    return points + adj * totalpages // 1000


class OomKiller:
    def __init__(self, mm: MM) -> None:
        self.mm = mm
        self.kills: list[OomKill] = []
        self.no_victim = 0  # invocations that found nothing to kill
        self.pages_freed = 0

    def select_bad_process(self) -> Process | None:
        """``select_bad_process``: the live process with the highest score."""
        total = self.mm.phys.spec.total_pages
        best, best_points = None, None
        for proc in self.mm.procs.values():
            points = oom_badness(proc, total)
            if points is not None and (best_points is None or points > best_points):
                best, best_points = proc, points
        return best

    def out_of_memory(self, nid: int, order: int, mt: int) -> bool:
        """Kill a victim for a failed allocation of ``order``/``mt`` on
        ``nid``; True when its memory has been freed (retry the allocation)."""
        mm = self.mm
        if any(p.oom_victim for p in mm.procs.values()):
            return False  # a marked victim is on its way out
        victim = self.select_bad_process()
        if victim is None:
            self.no_victim += 1
            return False
        total = mm.phys.spec.total_pages
        points = oom_badness(victim, total) or 0
        pt_pages = victim.pt.table_pages()
        self.kills.append(
            OomKill(mm.tick, victim.pid, points, victim.rss_pages, victim.swapped, pt_pages,
                    order, mt)
        )  # fmt: skip
        victim.oom_victim = True
        if victim is mm.current:
            return False  # it exits when its fault returns
        self.pages_freed += victim.rss_pages + pt_pages
        mm.exit(victim)
        return True
