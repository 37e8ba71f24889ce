"""The reference interpreter: exact RFC 9669 semantics, every memory access checked.

:class:`Interpreter` implements the engine contract (``program``, ``maps``,
``address_of(buf)``, ``run(mem) -> r0``).  At construction it validates the
bytecode and turns every slot into a handler closure -- ``handler() -> next
pc`` -- built by a factory chosen from :data:`FACTORIES` by the spec's kind;
the arithmetic comes from :mod:`bpfvm.semantics`, so the run loop does no
decoding and no opcode lookups.  Memory lives in a
:class:`~bpfvm.memory.AddressSpace`: the run's buffer (``ctx``), one
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
does.  A run executes at most ``budget`` instructions, then faults.
``on_step(pc, registers)``, when given, is called before every instruction
with the live register list (read it, do not keep or change it): the hook
for checking a verifier's claims at run time.

This module executes; it does not verify (see :mod:`verifier`).
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable
from itertools import repeat
from typing import Any

from bpfvm import isa, semantics
from bpfvm.errors import BpfvmError, BytecodeError, VmFault
from bpfvm.helpers import HelperSpec, HelperTable
from bpfvm.insn import Insn, lddw_value, validate
from bpfvm.maps import Map, make_maps
from bpfvm.memory import HALF, LOW, SHIFT, UNPACK, AddressSpace
from bpfvm.program import Program
from bpfvm.vmenv import VmEnv

DEFAULT_BUDGET = 10_000_000
MAX_FRAMES = 8
STACK_SIZE = 512
M64 = semantics.M64
_ZERO_STACK = bytes(STACK_SIZE)
_ZERO_REGS = (0,) * isa.NUM_REGS
_BIG_ENDIAN = {size: struct.Struct(">" + st.format[1:])
               for size, st in UNPACK.items()}

Handler = Callable[[], int]


class _Exit(Exception):
    """Raised by the final ``exit`` (or an aborting ``ldabs``) to end a run."""


class ProgramFault(VmFault):
    """A :class:`VmFault` that also names the source line of the faulting pc."""

    def __init__(self, pc: int, message: str, where: str) -> None:
        BpfvmError.__init__(self, f"pc {pc} ({where}): {message}")
        self.pc = pc
        self.message = message
        self.where = where


class Interpreter:
    """Runs a :class:`~bpfvm.program.Program` on Python ints (see module doc)."""

    def __init__(self, program: Program, helpers: HelperTable, maps: list[Map] | None = None,
                 env: VmEnv | None = None, *, budget: int = DEFAULT_BUDGET,
                 max_frames: int = MAX_FRAMES,
                 on_step: Callable[[int, list[int]], None] | None = None) -> None:
        validate(program.insns, helpers)
        self.program = program
        self.helpers = helpers
        self.maps = maps if maps is not None else make_maps(program.maps)
        _check_maps(program, self.maps)
        self.env = env if env is not None else VmEnv()
        self.budget = budget
        self.max_frames = max_frames
        self.on_step = on_step
        self._ticks = repeat(None, 0)  # the last run's remaining budget
        self.pc = 0  # pc of the helper being called (for faults raised by helpers)
        self.space = AddressSpace()
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
        self._handlers = _compile(self)

    # -- engine contract -------------------------------------------------
    def address_of(self, buf: bytearray, name: str | None = None) -> int:
        """The address of ``buf[0]`` for programs; stable for the buffer's life."""
        addr = self._buffers.get(id(buf))
        if addr is None:
            addr = self.space.add(name or f"buffer {len(self._buffers)}", buf)
            self._buffers[id(buf)] = addr
        return addr

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
        self._stack_views[0][:] = _ZERO_STACK
        handlers = self._handlers
        pc = 0
        self._ticks = ticks = repeat(None, self.budget)
        try:
            for _ in ticks:
                pc = handlers[pc]()
        except _Exit:
            return r[0]
        except VmFault as fault:
            loc = self.program.source[fault.pc] if 0 <= fault.pc < len(self.program.source) \
                else None
            if loc is not None and not isinstance(fault, ProgramFault):
                raise ProgramFault(fault.pc, fault.message, str(loc)) from None
            raise
        raise VmFault(pc, f"instruction budget of {self.budget} exhausted")

    @property
    def steps(self) -> int:
        """Instructions executed by the last run (the faulting one included)."""
        return self.budget - operator.length_hint(self._ticks)

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


def _check_maps(program: Program, maps: list[Map]) -> None:
    if len(maps) != len(program.maps):
        raise BpfvmError(f"program declares {len(program.maps)} maps, {len(maps)} given")
    for m, d in zip(maps, program.maps, strict=True):
        if m.defn != d:
            raise BpfvmError(f"map '{d.name}': given map {m.defn} does not match {d}")


# -- handler factories: (vm, pc, insn, spec) -> handler ------------------------

Factory = Callable[[Interpreter, int, Insn, isa.OpSpec], Handler]


def _alu(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    f = semantics.ALU[spec.key]
    r, d, n = vm._r, insn.dst, pc + 1
    if spec.src_reg:
        s = insn.src

        def alu_x() -> int:
            r[d] = f(r[d], r[s])
            return n
        return alu_x
    k = semantics.operand(insn.imm)
    if spec.kind is isa.Kind.MOV:
        value = f(0, k)

        def mov_k() -> int:
            r[d] = value
            return n
        return mov_k

    def alu_k() -> int:
        r[d] = f(r[d], k)
        return n
    return alu_k


def _jcond(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    f = semantics.JUMP[spec.key]
    r, d, n, t = vm._r, insn.dst, pc + 1, pc + 1 + insn.off
    if spec.src_reg:
        s = insn.src

        def jump_x() -> int:
            return t if f(r[d], r[s]) else n
        return jump_x
    k = semantics.operand(insn.imm)

    def jump_k() -> int:
        return t if f(r[d], k) else n
    return jump_k


def _ja(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    t = pc + 1 + (insn.off if spec.cls == isa.Cls.JMP else insn.imm)
    return lambda: t


def _invoke(vm: Interpreter, helper: HelperSpec, pc: int) -> None:
    """Call a helper with r1-r5; its result goes to r0."""
    r = vm._r
    if helper.impl is None:
        raise VmFault(pc, f"helper {helper.name} has no implementation")
    vm.pc = pc
    try:
        r[0] = int(helper.impl(vm, r[1], r[2], r[3], r[4], r[5]) or 0) & M64
    except VmFault:
        raise
    except Exception as exc:  # a helper's bug must not look like ours
        raise VmFault(pc, f"helper {helper.name} failed: {type(exc).__name__}: {exc}") from exc


def _call(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    helper, n = vm.helpers.get(insn.imm), pc + 1
    if helper is None:
        raise BytecodeError(pc, f"call to unknown helper {insn.imm}")

    def call() -> int:
        _invoke(vm, helper, pc)
        return n
    return call


def _callx(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    r, d, n, get = vm._r, insn.dst, pc + 1, vm.helpers.get

    def callx() -> int:
        helper = get(r[d])
        if helper is None:
            raise VmFault(pc, f"callx to unknown helper {r[d]}")
        _invoke(vm, helper, pc)
        return n
    return callx


def _call_local(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    r, calls, n, t = vm._r, vm._calls, pc + 1, pc + 1 + insn.imm
    stacks, tops, limit = vm._stack_views, vm._tops, vm.max_frames - 1

    def call_local() -> int:
        depth = len(calls) + 1
        if depth > limit:
            raise VmFault(pc, f"call depth limit of {vm.max_frames} frames exceeded")
        calls.append((n, r[6], r[7], r[8], r[9], r[10]))
        stacks[depth][:] = _ZERO_STACK
        r[10] = tops[depth]
        return t
    return call_local


def _exit(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    r, calls = vm._r, vm._calls

    def exit_() -> int:
        if calls:
            n, r[6], r[7], r[8], r[9], r[10] = calls.pop()
            return n
        raise _Exit
    return exit_


def _lddw(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    second = vm.program.insns[pc + 1]
    r, d, n = vm._r, insn.dst, pc + 2
    if spec.op == "lddw":
        value = lddw_value(insn, second)
    else:
        if not 0 <= insn.imm < len(vm.maps):
            raise BytecodeError(pc, f"lddw refers to map {insn.imm}, but the program "
                                f"declares {len(vm.maps)}")
        m = vm.maps[insn.imm]
        if spec.op == "lddw_map":
            value = vm.map_handle(insn.imm)
        else:
            if m.kind != "array":
                raise BytecodeError(pc, f"map '{m.name}': direct value access needs an "
                                    "array map")
            value = (vm.map_value_addr(m, 0) + (second.imm & 0xFFFFFFFF)) & M64

    def lddw() -> int:
        r[d] = value
        return n
    return lddw


def _mem_access(vm: Interpreter, pc: int, base_reg: int, off: int, size: int, what: str
                ) -> Callable[[], tuple[bytearray, int]]:
    """A function checking the access ``[base_reg + off]`` and returning (buffer, index)."""
    r, fast, resolve = vm._r, vm.space.fast.get, vm.space.resolve

    def access() -> tuple[bytearray, int]:
        a = (r[base_reg] + off) & M64
        buf = fast(a >> SHIFT)
        i = (a & LOW) - HALF
        if buf is None or i < 0 or i + size > len(buf):
            return resolve(a, size, what, pc)
        return buf, i
    return access


def _ldx(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    r, d, s, off, size, n = vm._r, insn.dst, insn.src, insn.off, spec.width, pc + 1
    unpack, fast, resolve = UNPACK[size].unpack_from, vm.space.fast.get, vm.space.resolve
    if spec.signed:
        access = _mem_access(vm, pc, s, off, size, "read")

        def ldxs() -> int:
            buf, i = access()
            r[d] = semantics.extend(unpack(buf, i)[0], size, True)
            return n
        return ldxs

    def ldx() -> int:  # the access check inlined: loads are the hottest memory operation
        a = (r[s] + off) & M64
        buf = fast(a >> SHIFT)
        i = (a & LOW) - HALF
        if buf is None or i < 0 or i + size > len(buf):
            buf, i = resolve(a, size, "read", pc)
        r[d] = unpack(buf, i)[0]
        return n
    return ldx


def _store(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    r, d, s, off, size, n = vm._r, insn.dst, insn.src, insn.off, spec.width, pc + 1
    pack, m = UNPACK[size].pack_into, semantics.mask(size * 8)
    fast, resolve = vm.space.fast.get, vm.space.resolve
    imm = insn.imm & m
    from_reg = spec.kind is isa.Kind.STX

    def store() -> int:  # the access check inlined, as in ldx
        a = (r[d] + off) & M64
        buf = fast(a >> SHIFT)
        i = (a & LOW) - HALF
        if buf is None or i < 0 or i + size > len(buf):
            buf, i = resolve(a, size, "write", pc)
        pack(buf, i, r[s] & m if from_reg else imm)
        return n
    return store


def _atomic(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    r, s, size, n = vm._r, insn.src, spec.width, pc + 1
    st = UNPACK[size]
    unpack, pack = st.unpack_from, st.pack_into
    access = _mem_access(vm, pc, insn.dst, insn.off, size, "write")
    if spec.op == "cmpxchg":
        bits = size * 8

        def cmpxchg() -> int:
            buf, i = access()
            old = unpack(buf, i)[0]
            pack(buf, i, semantics.cmpxchg(old, r[0], r[s], bits))
            r[0] = old
            return n
        return cmpxchg
    f = semantics.ATOMIC[spec.key]
    if semantics.fetches(spec):
        def atomic_fetch() -> int:
            buf, i = access()
            old = unpack(buf, i)[0]
            pack(buf, i, f(old, r[s]))
            r[s] = old
            return n
        return atomic_fetch

    def atomic() -> int:
        buf, i = access()
        pack(buf, i, f(unpack(buf, i)[0], r[s]))
        return n
    return atomic


def _ldpkt(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    r, size, imm, n = vm._r, spec.width, insn.imm, pc + 1
    s = insn.src if spec.kind is isa.Kind.LDIND else None
    unpack = _BIG_ENDIAN[size].unpack_from

    def ldpkt() -> int:
        buf = vm._ctx
        i = imm if s is None else semantics.sx(r[s] + imm, 32)
        if buf is None or i < 0 or i + size > len(buf):
            r[0] = 0
            raise _Exit
        r[0] = unpack(buf, i)[0]
        return n
    return ldpkt


FACTORIES: dict[isa.Kind, Factory] = {
    isa.Kind.ALU: _alu, isa.Kind.MOV: _alu, isa.Kind.NEG: _alu, isa.Kind.MOVSX: _alu,
    isa.Kind.END: _alu, isa.Kind.JCOND: _jcond, isa.Kind.JA: _ja, isa.Kind.CALL: _call,
    isa.Kind.CALLX: _callx, isa.Kind.CALL_LOCAL: _call_local, isa.Kind.EXIT: _exit,
    isa.Kind.LDDW: _lddw, isa.Kind.LDX: _ldx, isa.Kind.ST: _store, isa.Kind.STX: _store,
    isa.Kind.ATOMIC: _atomic, isa.Kind.LDABS: _ldpkt, isa.Kind.LDIND: _ldpkt,
}


def _fault(pc: int, message: str) -> Handler:
    def fault() -> int:
        raise VmFault(pc, message)
    return fault


def _observed(handler: Handler, pc: int, vm: Interpreter) -> Handler:
    """``handler`` preceded by a call of ``vm.on_step(pc, registers)``."""
    observe, r = vm.on_step, vm._r
    assert observe is not None

    def step() -> int:
        observe(pc, r)
        return handler()
    return step


def _compile(vm: Interpreter) -> list[Handler]:
    """One handler per slot, plus a final one for running off the end."""
    insns = vm.program.insns
    handlers: list[Handler] = []
    pc = 0
    while pc < len(insns):
        insn = insns[pc]
        spec = insn.spec
        assert spec is not None  # validate() ran
        handler = FACTORIES[spec.kind](vm, pc, insn, spec)
        handlers.append(_observed(handler, pc, vm) if vm.on_step else handler)
        if spec.kind is isa.Kind.LDDW:
            handlers.append(_fault(pc + 1, "jump into the middle of lddw"))
        pc += spec.slots
    handlers.append(_fault(len(insns), "ran off the end of the program"))
    return handlers


def interpret(program: Program, mem: bytearray | None = None,
              helpers: HelperTable | None = None, **kw: Any) -> int:
    """Convenience: build an :class:`Interpreter` and run ``program`` once."""
    if helpers is None:
        from bpfvm.stdhelpers import standard_helpers

        helpers = standard_helpers()
    return Interpreter(program, helpers, **kw).run(mem)
