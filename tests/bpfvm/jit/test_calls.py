"""Calls: helpers (native and callback), callx dispatch, local calls and the frame stack."""

from __future__ import annotations

from typing import Any

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.errors import VmFault
from bpfvm.helpers import HelperSpec, Ret
from bpfvm.interp.interpreter import Interpreter
from bpfvm.jit.engine import Jit
from bpfvm.stdhelpers import conformance_helpers, standard_helpers


def run_both(text: str, helpers: Any = None, mem: bytes | None = None) -> tuple[Any, Any]:
    program = assemble(text, "c.s")
    helpers = helpers or standard_helpers()
    out = []
    for engine in (Interpreter(program, helpers), Jit(program, helpers)):
        try:
            out.append(engine.run(None if mem is None else bytearray(mem)))
        except VmFault as fault:
            out.append(f"pc {fault.pc}: {fault.message}")
    return out[0], out[1]


def test_callx_reaches_native_and_callback_helpers() -> None:
    text = (".map a array key=4 value=8 entries=2\n*(u32 *)(r10 - 4) = 1\nr1 = map[a] ll\n"
            "r2 = r10\nr2 += -4\nr6 = 1\ncallx r6\nr7 = r0\nr6 = 7\ncallx r6\n"
            "r0 = r7\nexit\n")
    expected, actual = run_both(text)
    assert isinstance(expected, int) and expected != 0
    assert isinstance(actual, int) and actual != 0  # a pointer: engines differ, both non-null


def test_helper_calls_keep_r1_to_r5() -> None:
    text = ("r1 = 11\nr2 = 22\nr3 = 33\nr4 = 44\nr5 = 55\ncall 7\nr0 = r1\nr0 += r2\n"
            "r0 += r3\nr0 += r4\nr0 += r5\nexit\n")
    assert run_both(text) == (165, 165)


def test_local_calls_save_r6_to_r9_and_share_r0_to_r5() -> None:
    text = ("r6 = 1\nr7 = 2\nr8 = 3\nr9 = 4\nr1 = 10\ncall f\nr0 += r6\nr0 += r7\nr0 += r8\n"
            "r0 += r9\nr0 += r1\nexit\nf:\nr6 = 100\nr7 = 100\nr8 = 100\nr9 = 100\nr1 = 1000\n"
            "r0 = 5\nexit\n")
    assert run_both(text) == (1015, 1015)


@pytest.mark.parametrize(("depth", "faults"), [(7, False), (8, True)])
def test_call_depth_is_limited_to_eight_frames(depth: int, faults: bool) -> None:
    text = f"r1 = {depth}\nr0 = 0\ncall f\nexit\nf:\nr0 += 1\nr1 -= 1\n" \
           "if r1 == 0 goto out\ncall f\nout:\nexit\n"
    expected, actual = run_both(text)
    assert actual == expected
    assert isinstance(expected, str) is faults


def test_recursion_returns_through_every_frame() -> None:
    # sum 1..5 with the running sum in r0 and the counter on each frame's stack
    text = ("r1 = 5\nr0 = 0\ncall f\nexit\nf:\n*(u64 *)(r10 - 8) = r1\nif r1 == 0 goto out\n"
            "r1 -= 1\ncall f\nr1 = *(u64 *)(r10 - 8)\nr0 += r1\nout:\nexit\n")
    assert run_both(text) == (15, 15)


def test_the_conformance_helper_table_replaces_ktime() -> None:
    assert run_both("r1 = 77\ncall 5\nexit\n", conformance_helpers()) == (77, 77)


def test_a_helper_returning_none_gives_zero() -> None:
    helpers = standard_helpers().extended(
        [HelperSpec(1000, "quiet", (), Ret.VOID, lambda vm, *a: None)])
    assert run_both("r0 = 5\ncall 1000\nexit\n", helpers) == (0, 0)


def test_helpers_returning_big_or_negative_values_are_truncated() -> None:
    helpers = standard_helpers().extended(
        [HelperSpec(1000, "neg", (), Ret.SCALAR, lambda vm, *a: -2)])
    assert run_both("call 1000\nexit\n", helpers) == ((1 << 64) - 2, (1 << 64) - 2)
