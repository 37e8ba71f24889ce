"""The engine contract: what the interpreter and the JIT both offer, and what callers rely on.

An engine runs one :class:`~bpfvm.program.Program`.  ``run(mem)`` runs it
once with r1 = the address of ``mem`` and r2 = its length and returns r0
(unsigned 64-bit), raising :class:`~bpfvm.errors.VmFault` (or its
:class:`ProgramFault`, which names the source line) on a fault.  ``bind(buf)``
gives a zero-argument function running it on a fixed buffer the caller
writes in place: it returns r0, or :data:`FAULT` when the run faulted, and
``check()`` then raises that fault.  ``address_of(buf)`` makes a host buffer
addressable for the program (a page-table region, say).  An engine built
by :func:`bpfvm.load.load` for a hook also has ``ctx_reads``: the (offset,
size) of every context field the verifier found the program may load
(it rejects a context load at an offset it cannot pin down, and helpers
may not read the context), or None when that is not known, and
``ctx_hook``, the name of the hook it was verified for; a caller writing
that hook's context in place may skip the other fields.

A run executes at most ``budget`` instructions (:data:`INSN_BUDGET` by
default) in the interpreter and the checked JIT; the unchecked JIT trusts
the verifier, which proves a bound on executed instructions no larger than
this budget.  The loader builds engines; the MM core's dispatch uses only
this contract.

:class:`Tiered` is an engine made of the two: it runs a program on the
interpreter (no compile time) and moves it to the JIT once it has run
:data:`TIER_UP_CALLS` times, so short runs do not pay LLVM's compile time
and long ones get native speed.  Both tiers share the program's maps and
environment, and compute the same results (the interpreter is the JIT's
oracle), so when the move happens changes nothing but speed.  A caller
that binds a buffer may pass ``swap``: the tiered engine calls it with the
JIT's own bound function when it moves, so from then on a call costs what
a call of the JIT costs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from bpfvm.errors import BpfvmError, VmFault
from bpfvm.program import Program

TIER_UP_CALLS = 2_000  # runs on the interpreter before a tiered engine moves to the JIT
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


class Tiered:
    """The interpreter first, the JIT after ``after`` runs (see the module doc).

    ``interp`` is a ready interpreter; ``make_jit()`` builds the JIT for the
    same program, maps and environment (the loader passes both).  Runs of
    :meth:`run` and of bound functions count together.  :meth:`address_of`
    moves to the JIT at once (an address handed out must stay valid, and
    the two tiers address memory differently); so does :meth:`tier_up`.
    """

    def __init__(self, interp: Engine, make_jit: Callable[[], Engine],
                 after: int | None = None) -> None:
        self.program = interp.program
        self.interp = interp
        self.jit: Engine | None = None
        self.current: Engine = interp
        self._make_jit = make_jit
        self.after = TIER_UP_CALLS if after is None else after
        self.runs = 0  # runs on the interpreter so far
        self._binds: list[tuple[bytearray, Callable[[Callable[[], int]], None] | None,
                                list[Callable[[], int]]]] = []

    @property
    def tier(self) -> str:
        """``"interp"`` or ``"jit"``: where the program runs now."""
        return "interp" if self.jit is None else "jit"

    def __getattr__(self, name: str) -> object:
        # what helpers and callers read of an engine (maps, env, pc, ...): the current tier's
        if name.startswith("__") or name in ("interp", "current"):
            raise AttributeError(name)
        return getattr(self.current, name)

    def tier_up(self) -> Engine:
        """Move to the JIT now (once); every bound function follows."""
        if self.jit is None:
            jit = self._make_jit()
            for buf, swap, cell in self._binds:
                cell[0] = fn = jit.bind(buf)
                if swap is not None:
                    swap(fn)
            self.jit = self.current = jit
        return self.jit

    def run(self, mem: bytearray | None = None) -> int:
        if self.jit is None:
            self.runs += 1
            if self.runs > self.after:
                return self.tier_up().run(mem)
            return self.interp.run(mem)
        return self.jit.run(mem)

    def bind(self, buf: bytearray,
             swap: Callable[[Callable[[], int]], None] | None = None) -> Callable[[], int]:
        """A zero-argument function running the program on ``buf``; ``swap``,
        when given, receives the JIT's bound function when the engine moves
        (call that from then on: it skips this engine's counting)."""
        if self.jit is not None:
            return self.jit.bind(buf)
        cell = [self.interp.bind(buf)]
        self._binds.append((buf, swap, cell))

        def call() -> int:
            if self.jit is None:
                self.runs += 1
                if self.runs > self.after:
                    self.tier_up()
            return cell[0]()
        return call

    def check(self) -> None:
        self.current.check()

    def native_entry(self, buf: bytearray) -> int | None:
        """The JIT's native entry for ``buf`` once the engine has moved
        there; None before (a bound call keeps counting runs until then)."""
        if self.jit is None:
            return None
        entry = getattr(self.jit, "native_entry", None)
        return entry(buf) if callable(entry) else None

    def address_of(self, buf: bytearray, name: str | None = None) -> int:
        return self.tier_up().address_of(buf, name)
