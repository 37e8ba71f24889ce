"""Which loads of a page walk depend on which: the walk's (line, step) record.

:class:`WalkRecorder` runs a ``pt_lookup`` program on the reference
interpreter with bpfvm's load-dependency observer
(:class:`bpfvm.load.LoadDepths`) watching the table's regions, and records
for every region load its 64-byte line(s) and its *step*: the load's
dependency depth -- 1 when its address depends on no earlier region load of
the run, ``k + 1`` when it depends (through registers or the stack) on a
region load of step ``k``.  Loads of the same step can be issued together
by a hardware walker; steps are sequential.  This is the rule
:mod:`mmcore.pagetables.latency` prices.

A table of one region watches it with :meth:`WalkRecorder.watch` and reads
(line, step) pairs from :attr:`WalkRecorder.refs`; a table of several
regions watches them all with :meth:`WalkRecorder.watch_all` (registered
one after another, they are watched as one address span, which holds
nothing else) and reads (region index, line, step) triples from
:meth:`WalkRecorder.region_refs`.

Dependencies are data dependencies only; control dependencies are not
followed: a probe that a program makes only after a comparison failed,
with an address computed from the virtual address alone, counts as issued
in parallel, as a hardware walker issuing its probes speculatively (ECPT's
ways) would.  Helper calls return values of step 0.  The PTE the program
returns is read at the step after the one its pointer depends on, unless
its line was loaded already.
"""

from __future__ import annotations

from typing import Any

from bpfvm.helpers import HelperTable
from bpfvm.load import LoadDepths, make_engine
from bpfvm.program import Program

LINE_SHIFT = 6  # 64-byte lines


class WalkRecorder:
    """A program on the interpreter recording (region, line, step) of each region load."""

    def __init__(self, program: Program, helpers: HelperTable) -> None:
        self._depths = LoadDepths(program)
        self.engine: Any = make_engine(program, "interp", helpers, depths=self._depths)
        self._spans: list[tuple[int, int]] = []  # (offset from the span's start, size)

    def watch_all(self, bufs: list[bytearray]) -> list[int]:
        """Watch every buffer of ``bufs`` (made addressable); returns their addresses."""
        addrs = [self.engine.address_of(b, "region") for b in bufs]
        base = min(addrs)
        end = max(a + len(b) for a, b in zip(addrs, bufs, strict=True))
        self._depths.watch(base, end - base)
        self._spans = [(a - base, len(b)) for a, b in zip(addrs, bufs, strict=True)]
        return addrs

    def watch(self, buf: bytearray) -> int:
        """Watch the one buffer ``buf``; returns its address."""
        return self.watch_all([buf])[0]

    def run(self, mem: bytearray | None = None) -> int:
        self._depths.reset()
        return self.engine.run(mem)

    def region_refs(self) -> list[tuple[int, int, int]]:
        """(region, line in it, step) of each region load of the last run, a
        load that straddles two lines counting both."""
        out = []
        for rel, width, step in self._depths.refs:
            for i, (start, size) in enumerate(self._spans):
                if start <= rel < start + size:
                    first = (rel - start) >> LINE_SHIFT
                    last = (rel - start + width - 1) >> LINE_SHIFT
                    out.append((i, first, step))
                    if last != first:
                        out.append((i, last, step))
                    break
        return out

    @property
    def refs(self) -> list[tuple[int, int]]:
        """(line, step) of each load of the last run in the first region."""
        return [(line, step) for i, line, step in self.region_refs() if i == 0]

    @property
    def ret_step(self) -> int:
        """The step r0's value depends on at the final exit."""
        return self._depths.ret_depth

    @property
    def lines(self) -> set[int]:
        return {line for line, _ in self.refs}
