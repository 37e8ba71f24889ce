"""Lowering of calls and exits: helpers, callx, local calls, and the frame stack.

* Helper calls go to native code for ``map_lookup_elem`` (see
  :mod:`bpfvm.jit.maps`) and otherwise through a function pointer stored in
  the environment block (a ctypes callback into Python).  The pc is stored in
  ``W_PC`` first, so that faults raised by the helper name it; a callback
  that fails sets ``W_FAULT`` and the compiled code returns at once.  r1-r5
  keep their values, as in the interpreter.
* ``callx`` dispatches on the register value over the helper ids of the
  table and faults on any other value.
* Local calls keep an explicit frame stack in the function: r6-r9, r10 and
  a return id are saved per depth, the callee gets a fresh zeroed frame, and
  ``exit`` either returns r0 (depth 0) or restores the caller and switches
  on the return id.  Depth is limited to the interpreter's 8 frames.
"""

from __future__ import annotations

from llvmlite import ir

from bpfvm.jit.abi import (
    F_CALLX,
    F_DEPTH,
    F_NO_IMPL,
    FAULT_R0,
    MAX_FRAMES,
    W_DEPTH,
    W_FAULT,
    W_PC,
    helper_word,
)
from bpfvm.jit.ir import I64, Lowering

CALLBACK_TYPE = ir.FunctionType(I64, [I64] * 5)
SAVED = (6, 7, 8, 9, 10)  # registers a local call preserves
SAVE_WORDS = len(SAVED) + 1  # ... plus the return id


def call_helper(lw: Lowering, pc: int, helper_id: int) -> None:
    """r0 = helper(r1..r5), natively or through its callback slot."""
    layout = lw.layout
    if helper_id in layout.native:
        from bpfvm.jit.maps import lookup_elem

        lw.set(0, lookup_elem(lw, pc))
        return
    if helper_id not in layout.slots:
        lw.fault(pc, F_NO_IMPL, I64(helper_id))
        lw.b.position_at_end(lw.new_block(f"dead{pc}"))
        return
    b = lw.b
    lw.store_env(W_PC, I64(pc))
    word = helper_word(len(layout.maps), layout.slots.index(helper_id))
    fp = b.inttoptr(lw.load_env(word, invariant=True), CALLBACK_TYPE.as_pointer())
    r0 = b.call(fp, [lw.get(r) for r in range(1, 6)])
    failed = b.icmp_unsigned("!=", lw.load_env(W_FAULT), I64(0))
    out, ok = lw.new_block(f"helper_fault{pc}"), lw.new_block(f"helper_ok{pc}")
    b.cbranch(failed, out, ok)
    b.position_at_end(out)
    b.ret(I64(FAULT_R0))  # the callback recorded the fault
    b.position_at_end(ok)
    lw.set(0, r0)


def callx(lw: Lowering, pc: int, reg: int) -> None:
    """Call the helper whose id is in ``reg``; fault for an unknown id."""
    b = lw.b
    value = lw.get(reg)
    bad, done = lw.new_block(f"callx_bad{pc}"), lw.new_block(f"callx_done{pc}")
    switch = b.switch(value, bad)
    for helper_id in lw.layout.helper_ids:
        block = lw.new_block(f"callx{pc}_{helper_id}")
        switch.add_case(I64(helper_id), block)
        b.position_at_end(block)
        call_helper(lw, pc, helper_id)
        if not b.block.is_terminated:
            b.branch(done)
    b.position_at_end(bad)
    lw.fault(pc, F_CALLX, value)
    b.position_at_end(done)


# -- local calls ------------------------------------------------------------

def frame_prologue(lw: Lowering) -> None:
    """Allocate the frame stack: the depth and the saved registers per depth."""
    b = lw.b
    lw.depth = b.alloca(I64, name="depth")
    lw.saves = b.alloca(ir.ArrayType(I64, MAX_FRAMES * SAVE_WORDS), name="saves")
    lw.return_points = []
    lw.exit_block = lw.new_block("exit")
    b.store(I64(0), lw.depth)
    if lw.checked:
        lw.store_env(W_DEPTH, I64(0))


def _save_slot(lw: Lowering, depth: ir.Value, word: int) -> ir.Value:
    b = lw.b
    index = b.add(b.mul(depth, I64(SAVE_WORDS)), I64(word))
    return b.gep(lw.saves, [I64(0), index])


def _set_depth(lw: Lowering, depth: ir.Value) -> None:
    lw.b.store(depth, lw.depth)
    if lw.checked:
        lw.store_env(W_DEPTH, depth)


def call_local(lw: Lowering, pc: int, dest: int) -> None:
    b = lw.b
    depth = b.load(lw.depth)
    lw.fault_if(pc, b.icmp_unsigned(">=", depth, I64(MAX_FRAMES - 1)), F_DEPTH)
    for word, r in enumerate(SAVED):
        b.store(lw.get(r), _save_slot(lw, depth, word))
    b.store(I64(len(lw.return_points)), _save_slot(lw, depth, len(SAVED)))
    lw.return_points.append(pc + 1)
    inner = b.add(depth, I64(1))
    _set_depth(lw, inner)
    lw.zero_frame(inner)
    lw.set(10, lw.frame_top(inner))
    lw.jump(dest)


def exit_(lw: Lowering, pc: int) -> None:
    if lw.local_calls:
        lw.b.branch(lw.exit_block)
    else:
        lw.b.ret(lw.get(0))


def finish(lw: Lowering) -> None:
    """Emit the shared exit path once every return point is known."""
    if not lw.local_calls:
        return
    b = lw.b
    b.position_at_end(lw.exit_block)
    depth = b.load(lw.depth)
    done, pop = lw.new_block("exit_done"), lw.new_block("exit_pop")
    b.cbranch(b.icmp_unsigned("==", depth, I64(0)), done, pop)
    b.position_at_end(done)
    b.ret(lw.get(0))
    b.position_at_end(pop)
    outer = b.sub(depth, I64(1))
    for word, r in enumerate(SAVED):
        lw.set(r, b.load(_save_slot(lw, outer, word), typ=I64))
    rid = b.load(_save_slot(lw, outer, len(SAVED)), typ=I64)
    _set_depth(lw, outer)
    unreachable = lw.new_block("bad_return")
    switch = b.switch(rid, unreachable)
    for i, ret_pc in enumerate(lw.return_points):
        switch.add_case(I64(i), lw.blocks[ret_pc])
    b.position_at_end(unreachable)
    b.unreachable()
