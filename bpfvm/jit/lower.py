"""Lower a program to LLVM IR: one lowering function per instruction kind.

:data:`LOWER` maps every :class:`~bpfvm.isa.Kind` to a function
``(lowering, pc, insn, spec) -> None`` that appends the instruction's IR to
the current block; :func:`lower` walks the program once, starting a new IR
block at every leader pc, and returns the module.  The arithmetic comes from
:mod:`bpfvm.jit.ops` (the same rules as :mod:`bpfvm.isa.semantics`), calls and
exits from :mod:`bpfvm.jit.calls`, bounds checks and the instruction budget
of checked mode from :mod:`bpfvm.jit.checked`.  Memory accesses are plain
loads and stores at the computed address: the verifier proved them safe,
unless the program is compiled checked.

This module builds IR only; compiling it is :mod:`bpfvm.jit.compile`'s job.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from bpfvm import isa
from bpfvm.errors import BytecodeError
from bpfvm.isa.insn import Insn, lddw_value, map_value_offset
from bpfvm.jit import calls as jit_calls
from bpfvm.jit import checked as jit_checked
from bpfvm.jit import ops as jit_ops
from bpfvm.jit.abi import F_OFF_END, STACK_SIZE, W_MEM, W_MEM_LEN, W_STACK
from bpfvm.jit.ir import I32, I64, Layout, Lowering, target
from bpfvm.program import Program

Lower = Callable[[Lowering, int, Insn, isa.OpSpec], None]


def _width(spec: isa.OpSpec) -> int:
    return 64 if spec.is64 else 32


def _alu(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    w = _width(spec)
    x = lw.narrow(lw.get(insn.dst), w)
    y = lw.narrow(lw.operand(insn, spec), w)
    lw.set(insn.dst, lw.widen(jit_ops.BINOPS[spec.op](lw.b, x, y)))


def _movsx(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    ext = lw.narrow(lw.get(insn.src), spec.match[1])  # the off field is the source width
    lw.set(insn.dst, lw.widen(lw.b.sext(ext, ir.IntType(_width(spec)))))


def _end(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    value = lw.narrow(lw.get(insn.dst), spec.width)
    lw.set(insn.dst, lw.widen(jit_ops.end(lw.b, spec.op, value)))


def _ja(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    lw.jump(target(pc, insn, spec))


def _jcond(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    w = _width(spec)
    x = lw.narrow(lw.get(insn.dst), w)
    y = lw.narrow(lw.operand(insn, spec), w)
    cond = jit_ops.CONDS[spec.op](lw.b, x, y)
    lw.b.cbranch(cond, lw.blocks[target(pc, insn, spec)], lw.blocks[pc + 1])


def _lddw(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    second = lw.insns[pc + 1]
    if spec.op == "lddw":
        lw.set(insn.dst, I64(lddw_value(insn, second)))
        return
    maps = lw.layout.maps
    if not 0 <= insn.imm < len(maps):
        raise BytecodeError(pc, f"lddw refers to map {insn.imm}, but the program declares "
                            f"{len(maps)}")
    if spec.op == "lddw_map":
        lw.set(insn.dst, lw.map_handle(insn.imm))
        return
    if maps[insn.imm].kind != "array":
        raise BytecodeError(pc, f"map {insn.imm}: direct value access needs an array map")
    lw.set(insn.dst, lw.b.add(lw.map_storage(insn.imm), I64(map_value_offset(insn, second))))


def _pointer(lw: Lowering, pc: int, base_reg: int, off: int, size: int, write: bool
             ) -> ir.Value:
    """The pointer of an access, bounds-checked first in checked mode."""
    addr = lw.b.add(lw.get(base_reg), I64(off))
    if lw.checked:
        jit_checked.check_access(lw, pc, addr, size, write)
    return lw.pointer(addr)


def _ldx(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    ptr = _pointer(lw, pc, insn.src, insn.off, spec.width, False)
    value = lw.b.load(ptr, typ=ir.IntType(spec.width * 8), align=1)
    lw.set(insn.dst, lw.b.sext(value, I64) if spec.signed else lw.widen(value))


def _store(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    ptr = _pointer(lw, pc, insn.dst, insn.off, spec.width, True)
    value = lw.get(insn.src) if spec.kind is isa.Kind.STX else I64(insn.imm)
    lw.b.store(lw.narrow(value, spec.width * 8), ptr, align=1)


def _atomic(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    b, bits = lw.b, spec.width * 8
    ptr = _pointer(lw, pc, insn.dst, insn.off, spec.width, True)
    src = lw.narrow(lw.get(insn.src), bits)
    if spec.op == "cmpxchg":
        pair = b.cmpxchg(ptr, lw.narrow(lw.get(0), bits), src, "seq_cst", "seq_cst")
        lw.set(0, lw.widen(b.extract_value(pair, 0)))
        return
    op, fetch = jit_ops.ATOMICS[spec.op]
    old = b.atomic_rmw(op, ptr, src, "seq_cst")
    if fetch:
        lw.set(insn.src, lw.widen(old))


def _ldpkt(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    """Legacy packet load from the run's memory, big-endian; out of range ends
    the run with r0 = 0 (as the interpreter and the kernel do)."""
    b, size = lw.b, spec.width
    if spec.kind is isa.Kind.LDIND:
        index = b.sext(b.trunc(b.add(lw.get(insn.src), I64(insn.imm)), I32), I64)
    else:
        index = I64(insn.imm)
    bad = b.or_(b.icmp_signed("<", index, I64(0)),
                b.icmp_signed(">", b.add(index, I64(size)), lw.len0))
    bad = b.or_(bad, b.icmp_unsigned("==", lw.mem0, I64(0)))
    out, ok = lw.new_block(f"ldpkt_out{pc}"), lw.new_block(f"ldpkt_ok{pc}")
    b.cbranch(bad, out, ok)
    b.position_at_end(out)
    b.ret(I64(0))
    b.position_at_end(ok)
    value = b.load(lw.pointer(b.add(lw.mem0, index)), typ=ir.IntType(size * 8), align=1)
    lw.set(0, lw.widen(value if size == 1 else jit_ops.bswap(b, value)))


def _call(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    jit_calls.call_helper(lw, pc, insn.imm)


def _callx(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    jit_calls.callx(lw, pc, insn.dst)


def _call_local(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    jit_calls.call_local(lw, pc, target(pc, insn, spec))


def _exit(lw: Lowering, pc: int, insn: Insn, spec: isa.OpSpec) -> None:
    jit_calls.exit_(lw, pc)


LOWER: dict[isa.Kind, Lower] = {
    isa.Kind.ALU: _alu, isa.Kind.MOV: _alu, isa.Kind.NEG: _alu, isa.Kind.MOVSX: _movsx,
    isa.Kind.END: _end, isa.Kind.JA: _ja, isa.Kind.JCOND: _jcond, isa.Kind.CALL: _call,
    isa.Kind.CALLX: _callx, isa.Kind.CALL_LOCAL: _call_local, isa.Kind.EXIT: _exit,
    isa.Kind.LDDW: _lddw, isa.Kind.LDX: _ldx, isa.Kind.ST: _store, isa.Kind.STX: _store,
    isa.Kind.ATOMIC: _atomic, isa.Kind.LDABS: _ldpkt, isa.Kind.LDIND: _ldpkt,
}

# per kind: the table its operations must appear in (kinds not listed are one operation)
OP_TABLES: dict[isa.Kind, frozenset[str]] = {
    isa.Kind.ALU: frozenset(jit_ops.BINOPS), isa.Kind.MOV: frozenset(jit_ops.BINOPS),
    isa.Kind.NEG: frozenset(jit_ops.BINOPS), isa.Kind.JCOND: frozenset(jit_ops.CONDS),
    isa.Kind.END: jit_ops.END_OPS, isa.Kind.ATOMIC: frozenset(jit_ops.ATOMICS) | {"cmpxchg"},
}


def lowering_of(spec: isa.OpSpec) -> Lower | None:
    """The function lowering ``spec``, or None when it has none."""
    fn = LOWER.get(spec.kind)
    ops = OP_TABLES.get(spec.kind)
    if fn is None or (ops is not None and spec.op not in ops):
        return None
    return fn


def _prologue(lw: Lowering) -> None:
    b = lw.b
    if lw.local_calls:
        jit_calls.frame_prologue(lw)
    for r in range(isa.NUM_REGS):
        lw.set(r, I64(0))
    lw.set(1, lw.mem0)
    lw.set(2, lw.len0)
    lw.set(10, b.add(lw.stack_base, I64(STACK_SIZE)))
    lw.zero_frame(I64(0))
    if lw.checked or lw.calls_python:  # Python code may ask where this run's memory is
        lw.store_env(W_MEM, lw.mem0)
        lw.store_env(W_MEM_LEN, lw.len0)
        lw.store_env(W_STACK, lw.stack_base)
    if lw.checked:
        jit_checked.prologue(lw)


def lower(program: Program, layout: Layout) -> ir.Module:
    """The IR module of ``program`` (validated bytecode) for ``layout``."""
    lw = Lowering(program, layout)
    b = lw.b
    _prologue(lw)
    b.branch(lw.blocks[0])
    for pc, insn, spec in lw.code:
        if pc in lw.blocks:
            if not b.block.is_terminated:
                b.branch(lw.blocks[pc])
            b.position_at_end(lw.blocks[pc])
        if lw.checked:
            jit_checked.charge(lw, pc)
        LOWER[spec.kind](lw, pc, insn, spec)
    end = len(lw.insns)
    if not b.block.is_terminated:
        b.branch(lw.blocks[end])
    b.position_at_end(lw.blocks[end])
    if lw.checked:
        jit_checked.charge(lw, end)
    lw.fault(end, F_OFF_END)
    jit_calls.finish(lw)
    return lw.module
