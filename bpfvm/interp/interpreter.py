"""The reference interpreter: exact RFC 9669 semantics, every memory access checked.

:class:`Interpreter` implements the engine contract of :mod:`bpfvm.engine`
(``run``, ``bind``, ``check``, ``address_of``).  At construction it validates the
bytecode and turns every slot into a handler closure -- ``handler() -> next
pc`` -- with :func:`bpfvm.interp.ops.compile_handlers`, so the run loop does
no decoding and no opcode lookups.  Memory lives in a
:class:`~bpfvm.interp.memory.AddressSpace`: the run's buffer (``ctx``), one
512-byte stack per call frame, each map's storage (values only) and handle,
and host buffers registered with :meth:`Interpreter.address_of`.

Conventions: r1 = address of ``mem`` (0 when None), r2 = its length, r10 =
top of the frame's stack; stacks are zeroed when a frame is entered.  Helper
calls take r1-r5 and set r0; r1-r5 keep their values (as in the kernel's
interpreter -- the verifier forbids reading them).  Local calls save r6-r9
and r10, give the callee a fresh stack, and nest at most ``max_frames``
deep (8, the caller included).  ``exit`` returns from a local call or ends
the run.  Legacy ``ldabs``/``ldind`` read big-endian values from ``mem``
into r0; an out-of-range read ends the program with r0 = 0, as the kernel
does.  A run executes at most ``budget`` instructions, then faults; such
a run can be continued with :meth:`Interpreter.resume`.
``on_step(pc, registers)``, when given, is called before every instruction
with the live register list (read it, do not keep or change it): the hook
for checking a verifier's claims at run time; ``on_load(address, size)``
is called before every load (``ldx``, atomics): how a page walk's memory
references are counted.  ``validated=True`` skips the
bytecode check at construction: the caller vouches that the bytecode passed
:func:`bpfvm.isa.insn.check` with this helper table (e.g. a verifier accepted it).
``first_object`` numbers the address space's objects from another start, so
the same objects get other addresses (how a leaked address is told apart
from a value).

This module executes; it does not verify (see :mod:`verifier`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from itertools import repeat
from typing import Any

from bpfvm import isa
from bpfvm.engine import FAULT, INSN_BUDGET, located
from bpfvm.errors import BpfvmError, VmFault
from bpfvm.helpers import HelperTable
from bpfvm.interp.memory import AddressSpace
from bpfvm.interp.ops import FACTORIES, STACK_SIZE, ZERO_STACK, Exit, compile_handlers
from bpfvm.interp.translate import translate
from bpfvm.isa.insn import validate
from bpfvm.maps import Map, make_maps
from bpfvm.program import Program
from bpfvm.stdhelpers import standard_helpers
from bpfvm.vmenv import VmEnv

__all__ = ["FACTORIES", "MAX_FRAMES", "STACK_SIZE", "Interpreter", "interpret"]

MAX_FRAMES = 8
_ZERO_REGS = (0,) * isa.NUM_REGS


class Interpreter:
    """Runs a :class:`~bpfvm.program.Program` on Python ints (see module doc)."""

    def __init__(self, program: Program, helpers: HelperTable, maps: list[Map] | None = None,
                 env: VmEnv | None = None, *, budget: int = INSN_BUDGET,
                 max_frames: int = MAX_FRAMES,
                 on_step: Callable[[int, list[int]], None] | None = None,
                 on_load: Callable[[int, int], None] | None = None,
                 validated: bool = False, first_object: int = 1) -> None:
        if not validated:
            validate(program.insns, helpers)
        self.program = program
        self.helpers = helpers
        self.maps = maps if maps is not None else make_maps(program.maps)
        _check_maps(program, self.maps)
        self.env = env if env is not None else VmEnv()
        self.budget = budget
        self.max_frames = max_frames
        self.on_step = on_step if on_load is None else _observe_loads(program, on_load, on_step)
        self._fault: VmFault | None = None
        self._ticks = repeat(None, 0)  # the last run's remaining budget
        self._segment = self._done = 0  # its budget, and steps before it (resume)
        self._stopped_at: int | None = None  # where the last run ran out of budget
        self.pc = 0  # pc of the helper being called (for faults raised by helpers)
        self.space = AddressSpace(first_object)
        self._ctx_base = self.space.add("ctx", bytearray())
        self._ctx: bytearray | None = None
        self._stacks = [bytearray(STACK_SIZE) for _ in range(max_frames)]
        self._stack_views = [memoryview(b) for b in self._stacks]  # cheapest to zero
        self._tops = [self.space.add("stack" if k == 0 else f"stack of frame {k}", buf,
                                     origin=STACK_SIZE) + STACK_SIZE
                      for k, buf in enumerate(self._stacks)]
        self._handles: dict[int, Map] = {}
        self._storage: dict[int, int] = {}  # id(map) -> address of map.buf[0]
        for m in self.maps:
            self._handles[self.space.add(f"map '{m.name}' handle", bytearray())] = m
            self._storage[id(m)] = self.space.add(f"map '{m.name}'", m.buf, window=m.window)
        self._buffers: dict[int, int] = {}  # id(buf) -> address, for address_of
        self._r = [0] * isa.NUM_REGS
        self._calls: list[tuple[int, ...]] = []
        self._handlers = compile_handlers(self)

    # -- engine contract -------------------------------------------------
    def address_of(self, buf: bytearray, name: str | None = None) -> int:
        """The address of ``buf[0]`` for programs; stable for the buffer's life."""
        addr = self._buffers.get(id(buf))
        if addr is None:
            addr = self.space.add(name or f"buffer {len(self._buffers)}", buf)
            self._buffers[id(buf)] = addr
        return addr

    def bind(self, buf: bytearray) -> Callable[[], int]:
        """A zero-argument function running the program on ``buf`` (written in
        place by the caller): r0, or :data:`~bpfvm.engine.FAULT` after a fault,
        which :meth:`check` then raises.  The program runs translated into
        one Python function (:mod:`bpfvm.interp.translate`, checking what
        this loop checks) when it can be, else on the reference loop."""
        run = self.run

        def call() -> int:
            try:
                r0 = run(buf)
            except VmFault as fault:
                self._fault = fault
                return FAULT
            self._fault = None
            return r0
        fast = translate(self, buf, call)
        return call if fast is None else fast

    def check(self) -> None:
        """Raise the fault of the last bound call, if it faulted."""
        fault, self._fault = self._fault, None
        if fault is not None:
            raise fault

    def release(self, buf: bytearray) -> None:
        """Make a buffer given to :meth:`address_of` unreachable again (its
        address then faults as "no object at this address")."""
        addr = self._buffers.pop(id(buf), None)
        if addr is not None:
            self.space.remove(addr)

    def run(self, mem: bytearray | None = None) -> int:
        """Run once; returns r0 (unsigned 64-bit).  ``mem`` is modified in place."""
        r = self._r
        r[:] = _ZERO_REGS
        if mem is not self._ctx:
            if mem is not None and not isinstance(mem, bytearray):
                mem = bytearray(mem)
            self._ctx = mem
            self.space.replace(self._ctx_base, mem)
        if mem is not None:
            r[1] = self._ctx_base
            r[2] = len(mem)
        r[10] = self._tops[0]
        if self._calls:
            self._calls.clear()
        self._stack_views[0][:] = ZERO_STACK
        self._done = 0
        return self._loop(0, self.budget)

    def resume(self, budget: int) -> int:
        """Go on with the last run, stopped by its instruction budget, for at
        most ``budget`` more instructions (with the handlers in place now);
        returns r0 like :meth:`run`.  :attr:`steps` counts both parts."""
        pc = self._stopped_at
        if pc is None:
            raise BpfvmError("no run stopped by its instruction budget to resume")
        self._done = self.steps
        return self._loop(pc, budget)

    @property
    def stopped(self) -> bool:
        """The last run ran out of its budget (and may be resumed)."""
        return self._stopped_at is not None

    def _loop(self, pc: int, budget: int) -> int:
        r = self._r
        handlers = self._handlers
        self._stopped_at = None
        self._ticks = ticks = repeat(None, budget)
        self._segment = budget
        try:
            for _ in ticks:
                pc = handlers[pc]()
        except Exit:
            return r[0]
        except VmFault as fault:
            raise self._located(fault) from None
        self._stopped_at = pc
        total = self._done + budget
        raise self._located(VmFault(pc, f"instruction budget of {total} exhausted"))

    def _located(self, fault: VmFault) -> VmFault:
        return located(self.program, fault)

    @property
    def steps(self) -> int:
        """Instructions executed by the last run (the faulting one included)."""
        return self._done + self._segment - operator.length_hint(self._ticks)

    @property
    def registers(self) -> list[int]:
        """r0..r10 as left by the last run (a copy)."""
        return list(self._r)

    # -- what helpers use (see bpfvm.stdhelpers) ---------------------------
    def read(self, addr: int, size: int) -> bytes:
        return self.space.read(addr, size, self.pc)

    def write(self, addr: int, data: bytes) -> None:
        self.space.write(addr, data, self.pc)

    def map_at(self, handle: int) -> Map:
        m = self._handles.get(handle)
        if m is None:
            raise VmFault(self.pc, f"{handle:#x} is not a map handle")
        return m

    def map_value_addr(self, m: Map, offset: int) -> int:
        return self._storage[id(m)] + offset

    def map_handle(self, index: int) -> int:
        """The handle value ``lddw`` with the map pseudo source loads for map ``index``."""
        for handle, m in self._handles.items():
            if m is self.maps[index]:
                return handle
        raise IndexError(index)


def _observe_loads(program: Program, on_load: Callable[[int, int], None],
                   then: Callable[[int, list[int]], None] | None
                   ) -> Callable[[int, list[int]], None]:
    """An ``on_step`` calling ``on_load(address, size)`` before every memory
    load (``ldx`` and atomics), then ``then``."""
    loads: dict[int, tuple[int, int, int]] = {}
    for pc, insn in enumerate(program.insns):
        spec = insn.spec
        if spec is not None and spec.kind in (isa.Kind.LDX, isa.Kind.ATOMIC):
            reg = insn.src if spec.kind is isa.Kind.LDX else insn.dst
            loads[pc] = (reg, insn.off, spec.width)

    def step(pc: int, regs: list[int]) -> None:
        load = loads.get(pc)
        if load is not None:
            on_load(regs[load[0]] + load[1], load[2])
        if then is not None:
            then(pc, regs)
    return step


def _check_maps(program: Program, maps: list[Map]) -> None:
    if len(maps) != len(program.maps):
        raise BpfvmError(f"program declares {len(program.maps)} maps, {len(maps)} given")
    for m, d in zip(maps, program.maps, strict=True):
        if m.defn != d:
            raise BpfvmError(f"map '{d.name}': given map {m.defn} does not match {d}")


def interpret(program: Program, mem: bytearray | None = None,
              helpers: HelperTable | None = None, **kw: Any) -> int:
    """Convenience: build an :class:`Interpreter` and run ``program`` once."""
    if helpers is None:
        helpers = standard_helpers()
    return Interpreter(program, helpers, **kw).run(mem)
