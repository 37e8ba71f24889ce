"""Handler factories of the interpreter: one closure per instruction slot.

:func:`compile_handlers` turns each slot of a program into ``handler() ->
next pc``, built by the factory :data:`FACTORIES` names for the spec's kind.
Operands, jump targets and immediates are resolved here, once; the
arithmetic is :mod:`bpfvm.isa.semantics`; memory checks use the interpreter's
:class:`~bpfvm.interp.memory.AddressSpace`, inlined for plain loads and stores and
through :meth:`~bpfvm.interp.memory.AddressSpace.resolve` otherwise.  The run loop
and the engine API are in :mod:`bpfvm.interp.interpreter`; this module holds no state.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from bpfvm import isa
from bpfvm.errors import BytecodeError, VmFault
from bpfvm.helpers import HelperSpec
from bpfvm.interp.memory import HALF, LOW, SHIFT, UNPACK
from bpfvm.isa import bits, semantics
from bpfvm.isa.insn import Insn, lddw_value, map_value_offset

if TYPE_CHECKING:
    from bpfvm.interp.interpreter import Interpreter

STACK_SIZE = 512
M64 = bits.M64
ZERO_STACK = bytes(STACK_SIZE)
_BIG_ENDIAN = {size: struct.Struct(">" + st.format[1:]) for size, st in UNPACK.items()}

Handler = Callable[[], int]


class Exit(Exception):
    """Raised by the final ``exit`` (or an aborting ``ldabs``) to end a run."""


Factory = Callable[["Interpreter", int, Insn, isa.OpSpec], Handler]


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
        stacks[depth][:] = ZERO_STACK
        r[10] = tops[depth]
        return t
    return call_local


def _exit(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    r, calls = vm._r, vm._calls

    def exit_() -> int:
        if calls:
            n, r[6], r[7], r[8], r[9], r[10] = calls.pop()
            return n
        raise Exit
    return exit_


def lddw_constant(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> int:
    """The value the ``lddw`` at ``pc`` loads (a map's handle or value address
    for the map pseudo sources); :class:`BytecodeError` for a bad map reference."""
    second = vm.program.insns[pc + 1]
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
            value = (vm.map_value_addr(m, 0) + map_value_offset(insn, second)) & M64
    return value


def _lddw(vm: Interpreter, pc: int, insn: Insn, spec: isa.OpSpec) -> Handler:
    r, d, n = vm._r, insn.dst, pc + 2
    value = lddw_constant(vm, pc, insn, spec)

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
    pack, m = UNPACK[size].pack_into, bits.mask(size * 8)
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
        i = imm if s is None else bits.sx(r[s] + imm, 32)
        if buf is None or i < 0 or i + size > len(buf):
            r[0] = 0
            raise Exit
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


def compile_handlers(vm: Interpreter) -> list[Handler]:
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
