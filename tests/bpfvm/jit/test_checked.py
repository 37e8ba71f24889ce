"""Checked mode: every bad access and every exhausted budget faults as in the interpreter.

Each program runs on the interpreter and on the JIT compiled checked; the
faults must have the same pc and the same message once addresses (real in
the JIT, synthetic in the interpreter) are masked.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.errors import VmFault
from bpfvm.interp.interpreter import Interpreter
from bpfvm.jit.engine import Jit
from bpfvm.program import Program
from bpfvm.stdhelpers import standard_helpers

ADDRESS = re.compile(r"at 0x[0-9a-f]+")

# (name, assembly in kernel syntax, mem size or None, expected message fragment)
FAULTS = [
    ("read past ctx", "r0 = *(u32 *)(r1 + 2)\nexit", 4, "(ctx+2, size 4)"),
    ("read before ctx", "r0 = *(u8 *)(r1 - 1)\nexit", 4, "of 1 byte at"),
    ("write past ctx", "*(u64 *)(r1 + 8) = 1\nr0 = 0\nexit", 8, "invalid write of 8 bytes"),
    ("below the stack", "r0 = *(u64 *)(r10 - 520)\nexit", None, "(stack-520, size 512)"),
    ("above the stack", "*(u64 *)(r10 + 0) = 1\nr0 = 0\nexit", None, "(stack+0, size 512)"),
    ("straddling the stack top", "r0 = *(u64 *)(r10 - 4)\nexit", None, "(stack-4, size 512)"),
    ("null", "r1 = 0\nr0 = *(u32 *)(r1 + 0)\nexit", None, "(null pointer)"),
    ("wild", "r1 = 0x123456789abcdef0 ll\n*(u8 *)(r1 + 0) = 1\nr0 = 0\nexit", None,
     "(no object at this address)"),
    ("atomic past ctx", "r2 = 1\nlock *(u64 *)(r1 + 4) += r2\nr0 = 0\nexit", 8,
     "invalid write of 8 bytes"),
    ("no memory at all", "r0 = *(u8 *)(r1 + 0)\nexit", None, "(null pointer)"),
    ("map value overrun", ".map a array key=4 value=4 entries=2\nr1 = map_value[a] ll\n"
     "r0 = *(u32 *)(r1 + 4)\nexit", None, "outside any value of size 4"),
    ("past the last map entry", ".map a array key=4 value=4 entries=2\n"
     "r1 = map_value[a] ll\nr0 = *(u32 *)(r1 + 16)\nexit", None,
     "(map 'a'+16, outside any value of size 4)"),
    ("map handle", ".map a array key=4 value=4 entries=2\nr1 = map[a] ll\n"
     "r0 = *(u32 *)(r1 + 0)\nexit", None, "(map 'a' handle+0, size 0)"),
    ("callee overruns its frame", "call f\nexit\nf:\nr0 = *(u64 *)(r10 + 8)\nexit",
     None, "(stack of frame 1+8, size 512)"),
    ("lookup key pointer", ".map a array key=4 value=4 entries=2\nr1 = map[a] ll\nr2 = 8\n"
     "call 1\nexit", None, "pc 3: invalid read of 4 bytes"),
]


def outcome(engine: Any, mem: bytearray | None) -> str | int:
    try:
        return engine.run(mem)
    except VmFault as fault:
        return ADDRESS.sub("at ADDR", f"pc {fault.pc}: {fault.message}")


def both(program: Program, mem_size: int | None, **kw: Any) -> tuple[Any, Any]:
    helpers = standard_helpers()
    expected = outcome(Interpreter(program, helpers, **kw),
                       None if mem_size is None else bytearray(mem_size))
    actual = outcome(Jit(program, helpers, checked=True, **kw),
                     None if mem_size is None else bytearray(mem_size))
    return expected, actual


@pytest.mark.parametrize(("text", "mem", "fragment"), [f[1:] for f in FAULTS],
                         ids=[f[0] for f in FAULTS])
def test_fault_as_the_interpreter(text: str, mem: int | None, fragment: str) -> None:
    expected, actual = both(assemble(text + "\n", "f.s"), mem)
    assert actual == expected
    assert fragment in ADDRESS.sub("at 0x0", str(expected)) or fragment in str(expected)


@pytest.mark.parametrize("text", [
    "r2 = r10\nr2 += -8\ncall f\nr0 = *(u64 *)(r10 - 8)\nexit\n"
    "f:\n*(u64 *)(r2 + 0) = 77\nr0 = 0\nexit",  # a callee writes its caller's stack
    "r0 = *(u64 *)(r10 - 512)\nexit",  # the lowest stack slot
    "r0 = *(u8 *)(r1 + 7)\nexit",  # the last byte of ctx
])
def test_valid_accesses_pass_the_checks(text: str) -> None:
    expected, actual = both(assemble(text + "\n", "ok.s"), 8)
    assert isinstance(expected, int) and actual == expected


@pytest.mark.parametrize("budget", [1, 2, 3, 4, 5, 6, 7, 11, 29, 30, 31])
def test_the_budget_runs_out_at_the_interpreters_pc(budget: int) -> None:
    text = "r0 = 0\nr1 = 3\nloop:\nr0 += r1\nr1 -= 1\nif r1 != 0 goto loop\ncall f\nexit\n" \
           "f:\nr2 = 1\nr3 = 2\nexit\n"
    expected, actual = both(assemble(text, "b.s"), None, budget=budget)
    assert actual == expected


def test_a_budget_large_enough_changes_nothing() -> None:
    text = "r0 = 0\nr1 = 3\nloop:\nr0 += r1\nr1 -= 1\nif r1 != 0 goto loop\nexit\n"
    assert both(assemble(text, "b.s"), None, budget=12) == (6, 6)


def test_host_buffers_are_checked_objects() -> None:
    # r0 = *(u64 *)(*(u64 *)(r1 + 0) + *(u64 *)(r1 + 8))
    text = "r2 = *(u64 *)(r1 + 0)\nr3 = *(u64 *)(r1 + 8)\nr2 += r3\nr0 = *(u64 *)(r2 + 0)\nexit\n"
    program = assemble(text, "buf.s")
    results = []
    for engine in (Interpreter(program, standard_helpers()),
                   Jit(program, standard_helpers(), checked=True)):
        region = bytearray(range(16))
        base = engine.address_of(region, "region")
        for off in (8, 12):
            ctx = bytearray(base.to_bytes(8, "little") + off.to_bytes(8, "little"))
            results.append(outcome(engine, ctx))
    assert results[:2] == results[2:]
    assert results[0] == int.from_bytes(bytes(range(8, 16)), "little")
    assert "(region+12, size 16)" in results[1]
