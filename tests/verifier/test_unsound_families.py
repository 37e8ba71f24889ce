"""Four families of programs the verifier once accepted although they fault
or leak a pointer at run time (issue 12), and the code that reads their
instructions.

Each unsafe program of the families is a reject case of the corpus
(``tests/data/verifier/*.cases``, with its accepted twin); here every one
of them is also run without the verifier in the bounds-checked interpreter,
to show that it really faults or leaks an address on some input -- so each
rejection guards against an unsound accept, not a style.  The families:

1. a maybe-null pointer joined with the constant 0 kept the lookup's id
   (``ptr_or_null`` links);
2. atomic operations on a stack slot holding a spilled pointer;
3. pointer differences between map values of different lookups;
4. ``lddw`` map-value offsets read as signed by the verifier and unsigned
   by the engines.
"""

from __future__ import annotations

import pytest

from bpfvm.asm.assembler import AsmErrors, assemble
from bpfvm.asm.disasm import disassemble
from bpfvm.errors import VmFault
from bpfvm.interp.interpreter import Interpreter
from bpfvm.isa import PSEUDO_MAP_VALUE
from bpfvm.isa.insn import Insn, lddw, map_value_offset
from bpfvm.program import Program
from bpfvm.stdhelpers import standard_helpers
from tests.verifier.test_corpus import BY_NAME, run_case

HELPERS = standard_helpers()

# Corpus cases whose programs are unsafe: each must fault or leak when run
# unverified on one of the inputs below (the buffer's first byte steers them).
UNSAFE = {
    "null links": ["null-link-join-with-zero", "null-link-join-with-zero-leaks",
                   "null-link-join-with-zero-through-copy", "null-link-join-with-zero-spilled",
                   "null-link-crossed-joins"],
    "pointer differences": ["ptr-diff-two-lookups", "ptr-diff-lookup-and-direct-value",
                            "ptr-diff-hash-lookups", "ptr-diff-lookups-in-a-loop"],
    "lddw": ["map-direct-value-offset-unsigned"],
    "spill links": ["spill-cut-is-not-linked"],  # a cut spill must not link (precision)
    "atomics": ["atomic-add-spilled-ptr", "atomic-fetch-add-leaks-spilled-ptr",
                "atomic-fetch-or-leaks-spilled-ptr", "atomic-fetch-and-spilled-ptr",
                "atomic-xor-spilled-ptr", "atomic-xchg-takes-any-address",
                "atomic-xchg-leaks-spilled-ptr", "atomic-cmpxchg-leaks-spilled-ptr",
                "atomic-32-on-spilled-ptr", "atomic-32-fetch-upper-half-of-spilled-ptr",
                "atomic-through-stack-copy-on-spilled-ptr", "atomic-on-spilled-map-handle",
                "atomic-on-slot-spilled-on-one-path"],
}
INPUTS = (bytes(8), bytes([1]) + bytes(7), bytes([0xFF] * 8), bytes([3, 0, 0, 0, 0, 0, 1, 0]))


def _outcome(program: Program, data: bytes) -> str:
    """``fault: ...``, ``leak: ...`` (r0 is an address) or ``ok`` for one run."""
    vm = Interpreter(program, HELPERS)
    try:
        r0 = vm.run(bytearray(data))
    except VmFault as exc:
        return f"fault: {exc}"
    if vm.space.object_at(r0) is not None:
        return f"leak: r0 = {r0:#x}"
    return "ok"


@pytest.mark.parametrize("name", [n for names in UNSAFE.values() for n in names])
def test_rejected_family_case_is_really_unsafe(name: str) -> None:
    case = BY_NAME[name]
    assert case.meta["expect"].startswith("reject"), name
    assert not run_case(case).accepted
    program = assemble(case.source, f"{name}.s")
    outcomes = [_outcome(program, data) for data in INPUTS]
    assert any(o != "ok" for o in outcomes), f"{name} runs safely: {outcomes}"
    twin = BY_NAME[case.meta["twin"]]
    twin_program = assemble(twin.source, f"{twin.name}.s")
    assert run_case(twin).accepted
    assert all(_outcome(twin_program, data) == "ok" for data in INPUTS), twin.name


# -- family 4: one reading of the map-value offset ------------------------------------
MAP = ".map m array key=4 value=16 entries=1\n"


@pytest.mark.parametrize("off", [0, 8, 15, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF8])
def test_map_value_offset_is_unsigned_everywhere(off: int) -> None:
    first, second = lddw(1, off << 32, PSEUDO_MAP_VALUE)
    assert map_value_offset(first, second) == off
    maps = assemble(MAP + "exit").maps
    text = disassemble(Program([first, second, Insn(0x95)], maps=maps))
    assert (f"map_value[m]+{off} ll" if off else "map_value[m] ll") in text
    assert assemble(text).insns[:2] == [first, second]
    again = assemble(MAP + f"r1 = map_value[m]+{off} ll\nexit")
    assert again.insns[:2] == [first, second]


def test_assembler_rejects_a_negative_map_value_offset() -> None:
    with pytest.raises(AsmErrors, match="map value offset -8 is negative"):
        assemble(MAP + "r1 = map_value[m]-8 ll\nexit")
    with pytest.raises(AsmErrors, match="does not fit in 32 bits"):
        assemble(MAP + "r1 = map_value[m]+4294967296 ll\nexit")


def test_engine_and_verifier_read_the_same_map_value_byte() -> None:
    program = assemble(MAP + "r1 = map_value[m]+15 ll\nr0 = *(u8 *)(r1 + 0)\nexit")
    vm = Interpreter(program, HELPERS)
    vm.maps[0].buf[15] = 0xAB
    assert vm.run(bytearray(8)) == 0xAB
