"""The engine contract: what the interpreter and the JIT both offer, and what callers rely on.

An engine runs one :class:`~bpfvm.program.Program`.  ``run(mem)`` runs it
once with r1 = the address of ``mem`` and r2 = its length and returns r0
(unsigned 64-bit), raising :class:`~bpfvm.errors.VmFault` (or its
:class:`ProgramFault`, which names the source line) on a fault.  ``bind(buf)``
gives a zero-argument function running it on a fixed buffer the caller
writes in place: it returns r0, or :data:`FAULT` when the run faulted, and
``check()`` then raises that fault.  ``address_of(buf)`` makes a host buffer
addressable for the program (a page-table region, say).

A run executes at most ``budget`` instructions (:data:`INSN_BUDGET` by
default) in the interpreter and the checked JIT; the unchecked JIT trusts
the verifier, which proves a bound on executed instructions no larger than
this budget.  The loader builds engines; the MM core's dispatch uses only
this contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from bpfvm.errors import BpfvmError, VmFault
from bpfvm.program import Program

INSN_BUDGET = 10_000_000  # instructions a checked run may execute before it faults
FAULT = (1 << 64) - 1  # what a bound call returns after a fault (then check() raises)


class ProgramFault(VmFault):
    """A :class:`VmFault` that also names the source line of the faulting pc."""

    def __init__(self, pc: int, message: str, where: str, text: str = "") -> None:
        shown = f"\n    {text}" if text else ""  # the source line, when not at hand (C)
        BpfvmError.__init__(self, f"pc {pc} ({where}): {message}{shown}")
        self.pc = pc
        self.message = message
        self.where = where


def located(program: Program, fault: VmFault) -> VmFault:
    """``fault`` naming the source line of its pc, when the program has one."""
    if isinstance(fault, ProgramFault):
        return fault
    pc = fault.pc
    loc = program.source[pc] if 0 <= pc < len(program.source) else None
    return fault if loc is None else ProgramFault(pc, fault.message, str(loc), loc.text)


@runtime_checkable
class Engine(Protocol):
    """What every engine offers (see the module doc)."""

    program: Program

    def run(self, mem: bytearray | None = None) -> int: ...

    def bind(self, buf: bytearray) -> Callable[[], int]: ...

    def check(self) -> None: ...

    def address_of(self, buf: bytearray, name: str | None = None) -> int: ...
