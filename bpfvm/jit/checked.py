"""Checked mode: run-time bounds checks and an instruction budget, as the interpreter has.

Compiled with ``checked=True``, every load, store, atomic and map key read
first calls ``i1 bpf_valid(ptr env, i64 addr, i64 size)``, which accepts
an access lying entirely inside one object the interpreter would accept:
the run's memory, one live stack frame (frames are ``2 * 512`` bytes apart
so that small overruns land in no frame), the value window of one map slot,
or a host buffer from ``address_of`` (the table in ``W_BUFS``).  A failed
check records the pc, address, size and direction; the engine turns that
into the interpreter's ``invalid read|write of N bytes at ...`` message.
Each instruction also decrements a budget and faults when it runs out, so
a checked run never hangs.

Checks are only emitted in checked mode; by default the JIT trusts the
verifier.
"""

from __future__ import annotations

from llvmlite import ir

from bpfvm.jit.abi import (
    F_ACCESS,
    F_BUDGET,
    MAP_WORDS,
    STACK_SIZE,
    W_BUDGET,
    W_BUFS,
    W_DEPTH,
    W_MAPS,
    W_MEM,
    W_MEM_LEN,
    W_NBUFS,
    W_STACK,
)
from bpfvm.jit.ir import I1, I64, PTR, Lowering

VALID_TYPE = ir.FunctionType(I1, [PTR, I64, I64])
VALID_NAME = "bpf_valid"


def prologue(lw: Lowering) -> None:
    """Start the budget count and, without local calls, the depth."""
    lw.budget = lw.b.alloca(I64, name="budget")
    lw.b.store(lw.load_env(W_BUDGET), lw.budget)
    if not lw.local_calls:
        lw.store_env(W_DEPTH, I64(0))


def charge(lw: Lowering, pc: int) -> None:
    """Count one instruction; fault at ``pc`` when the budget is spent."""
    b = lw.b
    left = b.load(lw.budget)
    lw.fault_if(pc, b.icmp_unsigned("==", left, I64(0)), F_BUDGET)
    b.store(b.sub(left, I64(1)), lw.budget)


def check_access(lw: Lowering, pc: int, addr: ir.Value, size: int, write: bool) -> None:
    """Fault at ``pc`` unless ``[addr, addr + size)`` lies inside one object."""
    ok = lw.b.call(_valid_function(lw), [lw.env, addr, I64(size)])
    lw.fault_if(pc, lw.b.not_(ok), F_ACCESS, addr, I64(size), I64(int(write)))


def _inside(b: ir.IRBuilder, addr: ir.Value, size: ir.Value, start: ir.Value,
            length: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(the access is inside ``[start, start + length)``, its offset from start)."""
    off = b.sub(addr, start)
    fits = b.and_(b.icmp_unsigned("<=", off, length),
                  b.icmp_unsigned("<=", size, b.sub(length, off)))
    return fits, off


def _valid_function(lw: Lowering) -> ir.Function:
    name = VALID_NAME
    if name in lw.module.globals:
        return lw.module.globals[name]
    fn = ir.Function(lw.module, VALID_TYPE, name=name)
    fn.linkage = "internal"
    env, addr, size = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    yes = fn.append_basic_block("yes")

    def word(index: int | ir.Value) -> ir.Value:
        idx = I64(index) if isinstance(index, int) else index
        return b.load(b.gep(env, [idx], source_etype=I64), typ=I64)

    def accept_if(cond: ir.Value, label: str) -> None:
        nxt = fn.append_basic_block(label)
        b.cbranch(cond, yes, nxt)
        b.position_at_end(nxt)

    fits, _ = _inside(b, addr, size, word(W_MEM), word(W_MEM_LEN))
    accept_if(fits, "stack")
    off = b.sub(addr, word(W_STACK))
    frame = b.udiv(off, I64(lw.stride))
    within = b.urem(off, I64(lw.stride))
    live = b.icmp_unsigned("<=", frame, word(W_DEPTH))
    accept_if(b.and_(live, b.icmp_unsigned("<=", b.add(within, size), I64(STACK_SIZE))), "maps")
    for i, geom in enumerate(lw.layout.maps):
        fits, off = _inside(b, addr, size, word(W_MAPS + MAP_WORDS * i), I64(geom.length))
        within = b.urem(off, I64(geom.stride))
        in_value = b.and_(b.icmp_unsigned(">=", within, I64(geom.value_offset)),
                          b.icmp_unsigned("<=", b.add(within, size),
                                          I64(geom.value_offset + geom.value_size)))
        accept_if(b.and_(fits, in_value), f"map{i}_no")
    _buffers(fn, b, addr, size, word, yes)
    b.position_at_end(yes)
    b.ret(I1(1))
    return fn


def _buffers(fn: ir.Function, b: ir.IRBuilder, addr: ir.Value, size: ir.Value, word,
             yes: ir.Block) -> None:
    """Accept accesses inside a host buffer of the ``W_BUFS`` table; reject otherwise."""
    count = word(W_NBUFS)
    table = b.inttoptr(word(W_BUFS), PTR)
    entry = b.block
    loop, body, no = (fn.append_basic_block(n) for n in ("bufs", "buf", "no"))
    b.branch(loop)
    b.position_at_end(loop)
    k = b.phi(I64)
    b.cbranch(b.icmp_unsigned("<", k, count), body, no)
    b.position_at_end(body)
    start = b.load(b.gep(table, [b.mul(k, I64(2))], source_etype=I64), typ=I64)
    length = b.load(b.gep(table, [b.add(b.mul(k, I64(2)), I64(1))], source_etype=I64), typ=I64)
    fits, _ = _inside(b, addr, size, start, length)
    nxt = b.add(k, I64(1))
    b.cbranch(fits, yes, loop)
    k.add_incoming(I64(0), entry)
    k.add_incoming(nxt, body)
    b.position_at_end(no)
    b.ret(I1(0))
