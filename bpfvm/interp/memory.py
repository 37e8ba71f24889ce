"""The interpreter's address space: every object a program may reach, bounds-checked.

Each memory object (the run's ``mem``/context buffer, the stack of each call
frame, a map's value storage, a map handle, a host buffer made addressable
with :meth:`AddressSpace.add`) gets its own 4 GiB slice of the 64-bit
address space: object number ``n`` starts at ``n << 32 | 0x8000_0000``, so
``addr >> 32`` finds the object in O(1) and small negative or positive
overruns stay inside the object's slice, where they are reported against it
(``ctx-8``, ``ctx+12``).  Address 0 (and anything below ``1 << 32``) is null.

Objects are either *plain* (any byte range inside the buffer is valid) or
*windowed* (a map's storage: the buffer is a sequence of ``stride``-byte
slots and only the value window ``[lo, lo + size)`` of a slot is valid;
an access must stay inside one window).  Plain objects also live in
:attr:`AddressSpace.fast`, a dict from the high part to the buffer, which
lets the interpreter check the common case inline and call
:meth:`AddressSpace.resolve` only when that fails.

This module checks and describes addresses; it knows nothing of instructions
(callers pass the pc for fault messages).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bpfvm.errors import VmFault

SHIFT = 32
LOW = (1 << SHIFT) - 1
HALF = 0x8000_0000  # an object's offset 0 within its slice
NULL_LIMIT = 1 << SHIFT  # addresses below this are null pointers

UNPACK = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"),
          8: struct.Struct("<Q")}


@dataclass(slots=True)
class MemObject:
    """One addressable object.  ``origin`` is the offset shown as the object's
    reference point in messages (the top of a stack frame, where r10 points)."""

    name: str
    buf: bytearray
    base: int
    window: tuple[int, int, int] | None = None  # (stride, lo, size) of a windowed object
    origin: int = 0

    def where(self, off: int) -> str:
        """``name+off`` (relative to the origin), with the object's extent."""
        rel = off - self.origin
        text = f"{self.name}{rel:+d}"
        if self.window is None:
            return f"{text}, size {len(self.buf)}"
        stride, lo, size = self.window
        slot, within = divmod(off, stride)
        if 0 <= off < len(self.buf) and lo <= within < lo + size:
            return f"{self.name} entry {slot} value+{within - lo}, value size {size}"
        return f"{text}, outside any value of size {size}"


class AddressSpace:
    """Objects by number; addresses are ``number << 32 | HALF + offset``."""

    def __init__(self, first: int = 1) -> None:
        """``first``: the number of the first object (another value lays the
        same objects out at other addresses)."""
        if not 1 <= first < 1 << 31:
            raise ValueError(f"first object number {first} out of range")
        self.objects: dict[int, MemObject] = {}
        self.fast: dict[int, bytearray] = {}  # plain objects: high part -> buffer
        self._next = first

    # -- objects ---------------------------------------------------------
    def add(self, name: str, buf: bytearray, *, window: tuple[int, int, int] | None = None,
            origin: int = 0) -> int:
        """Make ``buf`` addressable; returns the address of its byte 0."""
        number = self._next
        self._next += 1
        base = (number << SHIFT) | HALF
        self.objects[number] = MemObject(name, buf, base, window, origin)
        if window is None:
            self.fast[number] = buf
        return base

    def replace(self, base: int, buf: bytearray | None) -> None:
        """Point the plain object at ``base`` to a new buffer (None: unmap it)."""
        number = base >> SHIFT
        obj = self.objects[number]
        if buf is None:
            obj.buf = bytearray()
            self.fast.pop(number, None)
        else:
            obj.buf = buf
            self.fast[number] = buf

    def remove(self, base: int) -> None:
        """Forget the object at ``base`` (its number is not reused)."""
        self.objects.pop(base >> SHIFT, None)
        self.fast.pop(base >> SHIFT, None)

    def object_at(self, addr: int) -> MemObject | None:
        return self.objects.get(addr >> SHIFT)

    # -- checked access --------------------------------------------------
    def resolve(self, addr: int, size: int, what: str, pc: int) -> tuple[bytearray, int]:
        """The buffer and index of a valid ``size``-byte access at ``addr``;
        raises :class:`VmFault` naming the access and object otherwise.
        ``what`` is ``"read"`` or ``"write"``."""
        addr &= (1 << 64) - 1
        obj = self.objects.get(addr >> SHIFT)
        access = f"invalid {what} of {size} byte{'' if size == 1 else 's'} at {addr:#x}"
        if obj is None:
            if addr < NULL_LIMIT:
                raise VmFault(pc, f"{access} (null pointer)")
            raise VmFault(pc, f"{access} (no object at this address)")
        off = (addr & LOW) - HALF
        ok = 0 <= off and off + size <= len(obj.buf)
        if ok and obj.window is not None:
            stride, lo, vsize = obj.window
            within = off % stride
            ok = lo <= within and within + size <= lo + vsize
        if not ok:
            raise VmFault(pc, f"{access} ({obj.where(off)})")
        return obj.buf, off

    def read(self, addr: int, size: int, pc: int) -> bytes:
        buf, i = self.resolve(addr, size, "read", pc)
        return bytes(buf[i:i + size])

    def write(self, addr: int, data: bytes, pc: int) -> None:
        buf, i = self.resolve(addr, len(data), "write", pc)
        buf[i:i + len(data)] = data

    def load(self, addr: int, size: int, pc: int) -> int:
        """An unsigned little-endian ``size``-byte value."""
        buf, i = self.resolve(addr, size, "read", pc)
        return UNPACK[size].unpack_from(buf, i)[0]

    def store(self, addr: int, size: int, value: int, pc: int) -> None:
        buf, i = self.resolve(addr, size, "write", pc)
        UNPACK[size].pack_into(buf, i, value & ((1 << (size * 8)) - 1))

    def describe(self, addr: int) -> str:
        """A readable name for an address (for traces and messages)."""
        addr &= (1 << 64) - 1
        obj = self.objects.get(addr >> SHIFT)
        if obj is None:
            return "null" if addr < NULL_LIMIT else f"{addr:#x}"
        return obj.where((addr & LOW) - HALF)
