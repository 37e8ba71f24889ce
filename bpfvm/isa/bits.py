"""Fixed-width integers: masks and signed readings, written once for the whole tree.

Registers and memory hold unsigned values; these read them as signed
numbers of a width (``s64(2**64 - 1) == -1``) and back.
"""

from __future__ import annotations

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1


def mask(bits: int) -> int:
    """All-ones of ``bits`` bits."""
    return (1 << bits) - 1


def sx(value: int, bits: int) -> int:
    """The low ``bits`` bits of ``value`` (any int) read as a signed number."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def s32(value: int) -> int:
    """``value`` (any int) as a signed 32-bit number."""
    value &= M32
    return value - (1 << 32) if value >> 31 else value


def s64(value: int) -> int:
    """``value`` (any int) as a signed 64-bit number."""
    value &= M64
    return value - (1 << 64) if value >> 63 else value
