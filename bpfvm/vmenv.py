"""The host environment a program's helpers see: clock, random numbers, trace output.

One :class:`VmEnv` per engine (or shared by engines that must agree, as in
differential tests).  The clock is supplied by the host -- the MM core passes
its simulated time -- and defaults to a deterministic counter so that runs
are reproducible; the random numbers come from a seeded generator; trace
lines accumulate in :attr:`VmEnv.trace` (bounded by ``trace_limit``, older
lines are kept and the count of dropped lines is in ``trace_dropped``).
This module holds state only; the helpers using it are in
:mod:`bpfvm.stdhelpers`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


class StepClock:
    """A deterministic clock: each reading advances by ``step`` nanoseconds."""

    def __init__(self, start: int = 0, step: int = 1000) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


@dataclass
class VmEnv:
    clock: Callable[[], int] = field(default_factory=StepClock)
    seed: int = 0
    trace_limit: int = 10_000
    trace: list[str] = field(default_factory=list)
    trace_dropped: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def now_ns(self) -> int:
        return int(self.clock()) & ((1 << 64) - 1)

    def random_u32(self) -> int:
        return self.rng.getrandbits(32)

    def emit(self, line: str) -> None:
        if len(self.trace) < self.trace_limit:
            self.trace.append(line)
        else:
            self.trace_dropped += 1
