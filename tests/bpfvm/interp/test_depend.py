"""bpfvm.interp.depend: the dependency depth of loads from a watched buffer."""

from __future__ import annotations

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.errors import BpfvmError
from bpfvm.load import LoadDepths, make_engine
from bpfvm.stdhelpers import standard_helpers

# r1 = the watched buffer (the run's memory is a context holding its address)
PROLOGUE = "r6 = *(u64 *)(r1 + 0)\n"


def setup(body: str, buf: bytearray):
    """An interpreter for ``body`` watching ``buf``: (engine, depths, ctx, base)."""
    prog = assemble(PROLOGUE + body)
    depths = LoadDepths(prog)
    engine = make_engine(prog, "interp", standard_helpers(), depths=depths)
    base = engine.address_of(buf, "region")
    depths.watch(base, len(buf))
    return engine, depths, bytearray(base.to_bytes(8, "little")), base


def run(body: str, buf: bytearray) -> tuple[int, LoadDepths]:
    engine, depths, ctx, base = setup(body, buf)
    depths.reset()
    return engine.run(ctx) - base, depths


def test_independent_loads_share_depth_one_and_chains_grow():
    buf = bytearray(256)
    buf[0:8] = (64).to_bytes(8, "little")
    buf[64:72] = (128).to_bytes(8, "little")
    body = """
    r2 = *(u64 *)(r6 + 0)
    r3 = *(u64 *)(r6 + 200)
    r4 = r6
    r4 += r2
    r5 = *(u64 *)(r4 + 0)
    r4 = r6
    r4 += r5
    r0 = *(u8 *)(r4 + 1)
    r0 = r6
    exit
    """
    _, d = run(body, buf)
    assert d.refs == [(0, 8, 1), (200, 8, 1), (64, 8, 2), (129, 1, 3)]
    assert d.ret_depth == 0  # r0 = r6, taken from the context, not the buffer


def test_depth_survives_spill_and_fill_and_helpers_clear_r0():
    buf = bytearray(128)
    buf[0:8] = (8).to_bytes(8, "little")
    body = """
    r2 = *(u64 *)(r6 + 0)
    *(u64 *)(r10 - 8) = r2
    r2 = 0
    r3 = *(u64 *)(r10 - 8)
    r3 += r6
    r0 = *(u64 *)(r3 + 0)
    r7 = r0
    call 7
    r4 = r0
    r4 &= 0
    r4 += r6
    r4 = *(u64 *)(r4 + 16)
    r0 = r7
    exit
    """
    _, d = run(body, buf)
    assert [ref[2] for ref in d.refs] == [1, 2, 1]  # the helper's result has depth 0
    assert d.ret_depth == 2  # r0 holds the value of the second, dependent load


def test_only_data_dependencies_count_and_reset_forgets():
    buf = bytearray(128)
    body = """
    r2 = *(u64 *)(r6 + 0)
    if r2 != 0 goto out
    r3 = *(u64 *)(r6 + 64)
out:
    r0 = r6
    exit
    """
    engine, depths, ctx, _ = setup(body, buf)
    for _ in range(2):
        depths.reset()
        engine.run(ctx)
        assert depths.refs == [(0, 8, 1), (64, 8, 1)]  # the branch is control only


def test_fetching_atomics_pass_the_depth_on():
    buf = bytearray(128)
    buf[0:8] = (16).to_bytes(8, "little")
    body = """
    r2 = 0
    r2 = atomic_fetch_add((u64 *)(r6 + 0), r2)
    r2 += r6
    r0 = *(u64 *)(r2 + 0)
    r0 = r2
    exit
    """
    off, d = run(body, buf)
    assert off == 16
    assert d.refs == [(0, 8, 1), (16, 8, 2)]
    assert d.ret_depth == 1


def test_depths_is_for_the_interpreter_and_excludes_on_step():
    prog = assemble("r0 = 0\nexit\n")
    with pytest.raises(BpfvmError, match="only the interpreter"):
        make_engine(prog, "jit", standard_helpers(), depths=LoadDepths(prog))
    with pytest.raises(BpfvmError, match="not both"):
        make_engine(prog, "interp", standard_helpers(), depths=LoadDepths(prog),
                    on_step=lambda pc, regs: None)
