"""The state block layout and the interpreter-shaped fault messages built from it."""

from __future__ import annotations

import pytest

from bpfvm.jit import abi as je

STACK = je.Span("stack", 0x7000_0000_0000, 512, origin=512)
CTX = je.Span("ctx", 0x5000_0000_0000, 16)
MAP = je.Span("map 'a'", 0x6000_0000_0000, 32, window=(16, 8, 4))


@pytest.mark.parametrize(("region", "addr", "size", "inside"), [
    (CTX, CTX.start, 16, True), (CTX, CTX.start + 1, 16, False), (CTX, CTX.start - 1, 1, False),
    (MAP, MAP.start + 8, 4, True), (MAP, MAP.start + 24, 4, True), (MAP, MAP.start + 10, 4, False),
    (MAP, MAP.start + 4, 4, False), (MAP, MAP.start + 40, 4, False),
])
def test_contains(region: je.Span, addr: int, size: int, inside: bool) -> None:
    assert region.contains(addr, size) is inside


@pytest.mark.parametrize(("addr", "size", "what", "message"), [
    (0, 8, "read", "invalid read of 8 bytes at 0x0 (null pointer)"),
    (0x10, 1, "write", "invalid write of 1 byte at 0x10 (null pointer)"),
    (CTX.start + 12, 8, "read",
     f"invalid read of 8 bytes at {CTX.start + 12:#x} (ctx+12, size 16)"),
    (CTX.start - 4, 4, "read", f"invalid read of 4 bytes at {CTX.start - 4:#x} (ctx-4, size 16)"),
    (STACK.start - 8, 8, "write",
     f"invalid write of 8 bytes at {STACK.start - 8:#x} (stack-520, size 512)"),
    (MAP.start + 24, 8, "read",
     f"invalid read of 8 bytes at {MAP.start + 24:#x} (map 'a' entry 1 value+0, value size 4)"),
    (MAP.start + 4, 4, "read",
     f"invalid read of 4 bytes at {MAP.start + 4:#x} (map 'a'+4, outside any value of size 4)"),
    (0x1234_0000_0000_0000, 2, "read",
     "invalid read of 2 bytes at 0x1234000000000000 (no object at this address)"),
])
def test_access_messages(addr: int, size: int, what: str, message: str) -> None:
    assert je.access_message([STACK, CTX, MAP], addr, size, what) == message


def test_find_region() -> None:
    assert je.find_region([STACK, CTX, MAP], CTX.start + 8, 8) is CTX
    assert je.find_region([STACK, CTX, MAP], CTX.start + 9, 8) is None


def test_every_fault_code_has_a_message() -> None:
    codes = {v for k, v in vars(je).items() if k.startswith("F_") and isinstance(v, int)}
    assert codes - {je.F_PYTHON} == set(je.MESSAGES)
    context = je.FaultContext(8, 100, lambda i: f"h{i}", lambda: [CTX])
    assert je.MESSAGES[je.F_NO_IMPL](7, 0, 0, context) == "helper h7 has no implementation"
    assert je.MESSAGES[je.F_DEPTH](0, 0, 0, context) == "call depth limit of 8 frames exceeded"


def test_words_do_not_overlap() -> None:
    header = [v for k, v in vars(je).items() if k.startswith("W_") and k != "W_MAPS"]
    assert len(set(header)) == len(header) and max(header) < je.W_MAPS
    assert je.helper_word(3, 0) == je.W_MAPS + 3 * je.MAP_WORDS
    assert je.env_words(3, 2) == je.helper_word(3, 2)
