"""Data-dependency depth of a run's loads from one watched buffer.

:class:`LoadDepths` is an ``on_step`` observer of the interpreter (hand it
to :func:`bpfvm.load.make_engine` as ``depths=``).  For every load from the
watched buffer it records ``(offset, width, depth)``: depth 1 when the
load's address depends on no earlier watched load of the run, ``k + 1``
when it depends on a watched load of depth ``k``.  Loads of one depth may
be issued together; depths are sequential -- the rule a hardware page
walker follows, and what the MM core's walk-latency model prices.

Dependencies are data dependencies only: a register's depth propagates
through ALU operations, moves, spills and fills (loads from memory other
than the watched buffer carry the depth last stored at that address) and
fetching atomics; control dependencies are not followed, so a load issued
only after a comparison failed, with an address independent of earlier
loads, counts as issued in parallel.  Helper calls return depth 0; a local
call keeps the caller's r6-r9 depths.  :attr:`LoadDepths.ret_depth` is r0's
depth at the final ``exit``.
"""

from __future__ import annotations

from bpfvm import isa
from bpfvm.program import Program

__all__ = ["LoadDepths"]

_FETCH = 0x01  # the atomic's "fetch" flag (xchg and cmpxchg carry it too)
_CMPXCHG = 0xF1

# plan codes, one per instruction slot
(_SKIP, _ALU, _MOV, _CLEAR, _LOAD, _STORE, _IMM_STORE, _ATOMIC, _CALL, _LOCAL,
 _EXIT) = range(11)
_CODE = {isa.Kind.ALU: _ALU, isa.Kind.NEG: _ALU, isa.Kind.END: _ALU, isa.Kind.MOV: _MOV,
         isa.Kind.MOVSX: _MOV, isa.Kind.LDDW: _CLEAR, isa.Kind.LDX: _LOAD,
         isa.Kind.STX: _STORE, isa.Kind.ST: _IMM_STORE, isa.Kind.ATOMIC: _ATOMIC,
         isa.Kind.CALL: _CALL, isa.Kind.CALLX: _CALL, isa.Kind.LDABS: _CALL,
         isa.Kind.LDIND: _CALL, isa.Kind.CALL_LOCAL: _LOCAL, isa.Kind.EXIT: _EXIT}


class LoadDepths:
    """Records ``(offset, width, depth)`` of each load from a watched buffer."""

    def __init__(self, program: Program) -> None:
        self._plan: list[tuple[int, int, int, int, int, bool, int]] = []
        for insn in program.insns:
            spec = insn.spec
            if spec is None:  # the second slot of an lddw
                self._plan.append((_SKIP, 0, 0, 0, 0, False, 0))
                continue
            self._plan.append((_CODE.get(spec.kind, _SKIP), insn.dst, insn.src, insn.off,
                               spec.width, spec.src_reg, insn.imm))
        self._base = self._size = 0
        self.refs: list[tuple[int, int, int]] = []
        self.ret_depth = 0
        self._depth = [0] * isa.NUM_REGS
        self._mem: dict[int, int] = {}
        self._frames: list[list[int]] = []

    def watch(self, base: int, size: int) -> None:
        """Record loads from ``[base, base + size)`` (an engine address)."""
        self._base, self._size = base, size

    def reset(self) -> None:
        """Forget the previous run (call before each run)."""
        self.refs.clear()
        self.ret_depth = 0
        self._depth = [0] * isa.NUM_REGS
        self._mem.clear()
        self._frames.clear()

    def step(self, pc: int, regs: list[int]) -> None:
        """The interpreter's ``on_step`` observer."""
        code, dst, src, off, width, src_reg, imm = self._plan[pc]
        if code == _SKIP:
            return
        d = self._depth
        if code == _ALU:
            if src_reg and d[src] > d[dst]:
                d[dst] = d[src]
        elif code == _MOV:
            d[dst] = d[src] if src_reg else 0
        elif code == _CLEAR:
            d[dst] = 0
        elif code == _LOAD:
            addr = regs[src] + off
            rel = addr - self._base
            if 0 <= rel < self._size:
                d[dst] = d[src] + 1
                self.refs.append((rel, width, d[dst]))
            else:
                d[dst] = self._mem.get(addr, 0)
        elif code == _STORE:
            self._mem[regs[dst] + off] = d[src]
        elif code == _IMM_STORE:
            self._mem[regs[dst] + off] = 0
        elif code == _ATOMIC:
            self._atomic(regs[dst] + off, dst, src, width, imm)
        elif code == _CALL:
            d[0] = 0
        elif code == _LOCAL:
            self._frames.append(d[6:10])
        elif self._frames:  # exit from a local call
            d[6:10] = self._frames.pop()
        else:
            self.ret_depth = d[0]

    def _atomic(self, addr: int, dst: int, src: int, width: int, imm: int) -> None:
        d = self._depth
        rel = addr - self._base
        if 0 <= rel < self._size:
            depth = d[dst] + 1
            self.refs.append((rel, width, depth))
        else:
            depth = self._mem.get(addr, 0)
            self._mem[addr] = max(depth, d[src])
        if imm & _FETCH:
            d[0 if imm == _CMPXCHG else src] = depth
