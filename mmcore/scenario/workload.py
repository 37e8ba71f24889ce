"""The workload a scenario offers: seeded streams independent of the policies.

A comparison is controlled only if every side is asked for the same work.
The runner therefore draws the workload from streams that nothing the
simulated kernel does can perturb: one stream each for arrivals, kernel
allocations and file reads (``random.Random`` seeded by the scenario seed
and the stream's name), and one per process (seeded from the arrival
stream) for its touches, references and munmaps.  What a process is asked
to do depends only on its stream and the tick: its touch cursor advances by
the bytes offered (``faults_per_tick`` units of 4 KiB, or of the page size
its VMA asks for with ``touch_huge``), not by what the faults achieved, and
it counts against ``max_processes`` until its exit tick even if it failed to
start or was OOM-killed.  A policy changes where and how memory is
allocated, never what is asked for.

:class:`Ledger` counts each kind of request twice: ``offered`` (asked for,
identical on every side of a comparison by construction) and ``completed``
(what the simulated kernel delivered).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mmcore.virt.process import Process

# bytes one touch unit covers, by the VMA's page-size mode (with touch_huge)
HUGE_UNIT = {"none": 4096, "thp": 2 << 20, "1g": 1 << 30}
KINDS = ("processes", "touched_bytes", "references", "munmaps", "kernel_allocs", "file_reads")


def stream(seed: int, name: str) -> random.Random:
    """The named, seeded stream of a scenario's workload."""
    return random.Random(f"{seed}/{name}")


@dataclass
class Ledger:
    """Work offered and work completed, per kind of request (:data:`KINDS`)."""

    offered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    completed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def count(self, kind: str, offered: int, completed: int) -> None:
        self.offered[kind] += offered
        self.completed[kind] += completed

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"offered": dict(self.offered), "completed": dict(self.completed)}


class Job:
    """One arrival of the trace: its mapping, its stream, its touch cursor and
    its exit tick.  ``proc`` is None when the process could not be started."""

    def __init__(self, proc: Process | None, start: int, size: int, exit_tick: int,
                 cold: bool, unit: int, rng: random.Random) -> None:
        self.proc, self.start, self.size, self.exit_tick = proc, start, size, exit_tick
        self.cold, self.unit, self.rng = cold, unit, rng
        self.touched = 0  # bytes offered so far, from the start of the mapping

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive


def mismatches(sides: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    """Kinds of request whose offered counts differ between the sides of a
    comparison (``sides``: side name -> :meth:`Ledger.as_dict`), as messages."""
    out = []
    names = list(sides)
    for kind in KINDS:
        values = {n: sides[n]["offered"][kind] for n in names}
        if len(set(values.values())) > 1:
            out.append(f"offered {kind} differ: "
                       + ", ".join(f"{n} {v:,}" for n, v in values.items()))
    return out
