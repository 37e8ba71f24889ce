"""Which loads of a page walk depend on which: the walk's (line, step) record.

:class:`WalkRecorder` runs a ``pt_lookup`` program on the reference
interpreter with bpfvm's load-dependency observer
(:class:`bpfvm.load.LoadDepths`) watching one buffer (the region), and
records for every region load its 64-byte line(s) and its *step*: the
load's dependency depth -- 1 when its address depends on no earlier region
load of the run, ``k + 1`` when it depends (through registers or the
stack) on a region load of step ``k``.  Loads of the same step can be
issued together by a hardware walker; steps are sequential.  This is the
rule :mod:`mmcore.pagetables.latency` prices.

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
    """A program on the interpreter recording (line, step) of each region load."""

    def __init__(self, program: Program, helpers: HelperTable) -> None:
        self._depths = LoadDepths(program)
        self.engine: Any = make_engine(program, "interp", helpers, depths=self._depths)

    @property
    def refs(self) -> list[tuple[int, int]]:
        """(line offset in the region, step) of each region load of the last run,
        a load that straddles two lines counting both."""
        out: list[tuple[int, int]] = []
        for rel, width, step in self._depths.refs:
            first, last = rel >> LINE_SHIFT, (rel + width - 1) >> LINE_SHIFT
            out.append((first, step))
            if last != first:
                out.append((last, step))
        return out

    @property
    def ret_step(self) -> int:
        """The step r0's value depends on at the final exit."""
        return self._depths.ret_depth

    @property
    def lines(self) -> set[int]:
        return {line for line, _ in self.refs}

    def watch(self, buf: bytearray) -> int:
        """Watch ``buf`` (made addressable); returns its address."""
        base = self.engine.address_of(buf, "region")
        self._depths.watch(base, len(buf))
        return base

    def run(self, mem: bytearray | None = None) -> int:
        self._depths.reset()
        return self.engine.run(mem)
