"""A walk recorder over several regions: the ``pt_lookup`` program on the
interpreter with bpfvm's load-dependency observer watching every region of
the table (:class:`~mmcore.pagetables.walkrec.WalkRecorder` watches one
buffer).  The regions, registered one after another, are watched as one
address span, which holds nothing else; each load is then given back as
(region index, line, step)."""

from __future__ import annotations

from typing import Any

from bpfvm.helpers import HelperTable
from bpfvm.load import LoadDepths, make_engine
from bpfvm.program import Program

LINE_SHIFT = 6


class RegionsRecorder:
    """Records (region index, line, step) of each region load of a walk."""

    def __init__(self, program: Program, helpers: HelperTable) -> None:
        self.depths = LoadDepths(program)
        self.engine: Any = make_engine(program, "interp", helpers, depths=self.depths)
        self._spans: list[tuple[int, int]] = []

    def watch_all(self, bufs: list[bytearray]) -> list[int]:
        """Watch every buffer of ``bufs``; returns their addresses."""
        addrs = [self.engine.address_of(b, "region") for b in bufs]
        base = min(addrs)
        end = max(a + len(b) for a, b in zip(addrs, bufs, strict=True))
        self.depths.watch(base, end - base)
        self._spans = [(a - base, len(b)) for a, b in zip(addrs, bufs, strict=True)]
        return addrs

    def run(self, mem: bytearray | None = None) -> int:
        self.depths.reset()
        return self.engine.run(mem)

    def region_refs(self) -> list[tuple[int, int, int]]:
        """(region, line in it, step) of each load of the last run, a load
        straddling two lines counting both."""
        out = []
        for rel, width, step in self.depths.refs:
            for i, (start, size) in enumerate(self._spans):
                if start <= rel < start + size:
                    first = (rel - start) >> LINE_SHIFT
                    last = (rel - start + width - 1) >> LINE_SHIFT
                    out.append((i, first, step))
                    if last != first:
                        out.append((i, last, step))
                    break
        return out
