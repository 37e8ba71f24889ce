"""Which loads of a page walk depend on which: a data-dependency recorder.

:class:`WalkRecorder` runs a ``pt_lookup`` program on the reference
interpreter and records, for every load from one watched buffer (the
region), its 64-byte line and its *step*: 1 when the load's address
depends on no earlier region load of the run, ``k + 1`` when it depends
(through registers or the stack) on a region load of step ``k``.  Loads of
the same step can be issued together by a hardware walker; steps are
sequential.  This is the rule :mod:`mmcore.pagetables.latency` prices.

Dependencies are data dependencies only (register taint, propagated by
ALU operations, moves, spills and fills); control dependencies are not
followed: a probe that a program makes only after a comparison failed,
with an address computed from the virtual address alone, counts as
issued in parallel, as a hardware walker issuing its probes speculatively
(ECPT's ways) would.  Helper calls return untainted values.  The PTE the
program returns is read at the step after the one its pointer depends on,
unless its line was loaded already.

The recorder is built from the interpreter class the loader hands out
(``make_engine(..., "interp")``) with its documented ``on_step`` observer.
"""

from __future__ import annotations

from typing import Any

from bpfvm.helpers import HelperTable
from bpfvm.load import make_engine
from bpfvm.program import Program

# instruction kinds (bpfvm's opcode table names them; compared by value)
_ALU, _MOV = {"alu", "neg", "end"}, {"mov", "movsx"}
_LOAD, _STORE, _IMM_STORE = "ldx", "stx", "st"


class WalkRecorder:
    """A program on the interpreter recording (line, step) of each region load."""

    def __init__(self, program: Program, helpers: HelperTable) -> None:
        self._base, self._size = 0, 0
        self.refs: list[tuple[int, int]] = []  # (line offset in the region, step)
        self.ret_step = 0  # taint of r0 at the final exit
        self._plan = [_plan(insn) for insn in program.insns]
        self._taint = [0] * 11
        self._mem: dict[int, int] = {}
        self._frames: list[list[int]] = []
        self.engine: Any = make_engine(program, "interp", helpers, on_step=self._step)

    @property
    def lines(self) -> set[int]:
        return {line for line, _ in self.refs}

    def watch(self, buf: bytearray) -> int:
        """Watch ``buf`` (made addressable); returns its address."""
        self._base = self.engine.address_of(buf, "region")
        self._size = len(buf)
        return self._base

    def run(self, mem: bytearray | None = None) -> int:
        self.refs.clear()
        self._taint = [0] * 11
        self._mem.clear()
        self._frames.clear()
        self.ret_step = 0
        return self.engine.run(mem)

    def _step(self, pc: int, regs: list[int]) -> None:
        plan = self._plan[pc]
        if plan is None:
            return
        kind, dst, src, off, width, src_reg = plan
        t = self._taint
        if kind in _ALU:
            if src_reg and t[src] > t[dst]:
                t[dst] = t[src]
        elif kind in _MOV:
            t[dst] = t[src] if src_reg else 0
        elif kind == "lddw":
            t[dst] = 0
        elif kind == _LOAD:
            addr = regs[src] + off
            rel = addr - self._base
            if 0 <= rel < self._size:
                step = t[src] + 1
                self.refs.append((rel >> 6, step))
                if (rel + width - 1) >> 6 != rel >> 6:
                    self.refs.append(((rel + width - 1) >> 6, step))
                t[dst] = step
            else:
                t[dst] = self._mem.get(addr, 0)
        elif kind == _STORE:
            self._mem[regs[dst] + off] = t[src]
        elif kind == _IMM_STORE:
            self._mem[regs[dst] + off] = 0
        elif kind == "atomic":
            addr = regs[dst] + off
            rel = addr - self._base
            if 0 <= rel < self._size:
                self.refs.append((rel >> 6, t[dst] + 1))
        elif kind == "call":
            t[0] = 0
        elif kind == "call_local":
            self._frames.append(t[6:10])
        elif kind == "exit":
            if self._frames:
                t[6:10] = self._frames.pop()
            else:
                self.ret_step = t[0]


def _plan(insn: Any) -> tuple | None:
    spec = insn.spec
    if spec is None:  # the second slot of an lddw
        return None
    return (spec.kind.value, insn.dst, insn.src, insn.off, spec.width, spec.src_reg)
