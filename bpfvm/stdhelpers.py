"""The standard helpers (kernel ids): map access, clock, trace output, random numbers.

Each helper is a :class:`~bpfvm.helpers.HelperSpec` whose implementation is
``impl(vm, r1, r2, r3, r4, r5) -> r0``.  ``vm`` is whatever engine calls it;
it must provide (the interpreter does, and the JIT's callbacks must):

* ``vm.env`` -- the :class:`~bpfvm.vmenv.VmEnv` (clock, random, trace);
* ``vm.read(addr, size) -> bytes`` and ``vm.write(addr, data)`` -- checked
  access to program memory, raising :class:`~bpfvm.errors.VmFault`;
* ``vm.map_at(handle) -> Map`` -- the map a ``lddw`` map handle denotes
  (faults for anything else);
* ``vm.map_value_addr(map, offset) -> int`` -- the program-visible address of
  byte ``offset`` of ``map.buf``.

Ids: 1 ``map_lookup_elem``, 2 ``map_update_elem``, 3 ``map_delete_elem``,
5 ``ktime_get_ns``, 6 ``trace_printk``, 7 ``get_prandom_u32``.
:func:`conformance_helpers` replaces id 5 by the uBPF test helper that
returns its first argument, which the conformance vectors need.  MM helpers
are defined elsewhere and added with :meth:`HelperTable.extended`.
"""

from __future__ import annotations

import re
from typing import Any

from bpfvm.helpers import Arg, HelperSpec, HelperTable, Ret
from bpfvm.maps import EINVAL

M64 = (1 << 64) - 1
TRACE_FMT_MAX = 256
_CONV = re.compile(rb"%([-0]*)(\d*)(hh|h|ll|l|z)?([diuxXcp%])?")


def map_lookup_elem(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = vm.map_at(r1)
    off = m.find(vm.read(r2, m.key_size))
    return 0 if off is None else vm.map_value_addr(m, off)


def map_update_elem(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = vm.map_at(r1)
    key = vm.read(r2, m.key_size)
    value = vm.read(r3, m.value_size)
    return m.update_errno(key, value, r4) & M64


def map_delete_elem(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = vm.map_at(r1)
    return m.delete_errno(vm.read(r2, m.key_size)) & M64


def ktime_get_ns(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.now_ns()


def get_prandom_u32(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.random_u32()


def format_trace(fmt: bytes, args: tuple[int, ...]) -> str | None:
    """printf-style formatting of a trace_printk format (None when invalid).

    Supports ``%d %i %u %x %X %c %p %%`` with ``-``/``0`` flags, a width and
    the ``h hh l ll z`` length modifiers (without ``l``/``ll``/``z`` an
    argument is a 32-bit int); at most ``len(args)`` conversions.
    """
    out: list[str] = []
    pos = used = 0
    for m in _CONV.finditer(fmt):
        out.append(fmt[pos:m.start()].decode("latin-1"))
        pos = m.end()
        flags, width, length, conv = (g.decode() if g else "" for g in m.groups())
        if not conv:
            return None
        if conv == "%":
            out.append("%")
            continue
        if used >= len(args):
            return None
        value = args[used]
        used += 1
        bits = 64 if length in ("l", "ll", "z") or conv == "p" else 32
        value &= (1 << bits) - 1
        if conv in "di" and value >> (bits - 1):
            value -= 1 << bits
        text = {"d": str, "i": str, "u": str, "x": "{:x}".format, "X": "{:X}".format,
                "c": lambda v: chr(v & 0xFF), "p": "0x{:x}".format}[conv](value)
        pad = int(width or 0)
        if "-" in flags:
            text = text.ljust(pad)
        else:
            text = text.rjust(pad, "0" if "0" in flags and conv != "c" else " ")
        out.append(text)
    out.append(fmt[pos:].decode("latin-1"))
    return "".join(out)


def format_reads(fmt: bytes) -> int:
    """The most values :func:`format_trace` reads for ``fmt`` cut anywhere
    (at its first NUL, at the size the program gives): the conversions
    before the first invalid one (a cut never completes a conversion)."""
    used = 0
    for m in _CONV.finditer(fmt.split(b"\0", 1)[0]):
        conv = m.group(4)
        if not conv:
            break
        if conv != b"%":
            used += 1
    return used


def trace_printk(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    size = min(r2, TRACE_FMT_MAX)
    if size == 0:
        return -EINVAL & M64
    fmt = vm.read(r1, size).split(b"\0", 1)[0]
    text = format_trace(fmt, (r3, r4, r5))
    if text is None:
        return -EINVAL & M64
    vm.env.emit(text.rstrip("\n"))
    return len(text.encode("latin-1", "replace"))


def _first_arg(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return r1


STANDARD: tuple[HelperSpec, ...] = (
    HelperSpec(1, "map_lookup_elem", (Arg.MAP, Arg.MAP_KEY), Ret.MAP_VALUE_OR_NULL,
               map_lookup_elem, "pointer to the value stored under *key, or 0"),
    HelperSpec(2, "map_update_elem", (Arg.MAP, Arg.MAP_KEY, Arg.MAP_VALUE, Arg.ANYTHING),
               Ret.SCALAR, map_update_elem,
               "store *value under *key; flags 0 any, 1 only new, 2 only existing; "
               "0 or a negative errno"),
    HelperSpec(3, "map_delete_elem", (Arg.MAP, Arg.MAP_KEY), Ret.SCALAR, map_delete_elem,
               "remove *key; 0, -ENOENT if absent, -EINVAL for array maps"),
    HelperSpec(5, "ktime_get_ns", (), Ret.SCALAR, ktime_get_ns,
               "the host's clock, in nanoseconds"),
    HelperSpec(6, "trace_printk",
               (Arg.MEM, Arg.SIZE, Arg.FORMAT_VALUE, Arg.FORMAT_VALUE, Arg.FORMAT_VALUE),
               Ret.SCALAR, trace_printk,
               "append a printf-formatted line (format, its size, then up to three scalar "
               "values in r3-r5, those the format reads initialised) to the trace; "
               "bytes written or -EINVAL", format_reads),
    HelperSpec(7, "get_prandom_u32", (), Ret.SCALAR, get_prandom_u32,
               "a pseudo-random 32-bit number from the seeded generator"),
)

UNWIND = HelperSpec(5, "unwind", (Arg.ANYTHING,), Ret.SCALAR, _first_arg,
                    "returns its first argument (the uBPF conformance test helper)")


def standard_helpers() -> HelperTable:
    return HelperTable(STANDARD)


def conformance_helpers() -> HelperTable:
    """The standard table with id 5 returning r1, as the conformance vectors expect."""
    return standard_helpers().extended([UNWIND])
