"""The run-time block shared by JIT-compiled code and its engine, and fault reporting.

Compiled code is shared by every engine loading the same program (see
:mod:`bpfvm.jit.compile`), so everything that belongs to one engine lives
in its *environment block*: an array of 64-bit words whose address the
compiled function receives as its first argument.  Word indexes:

==============  =============================================================
``W_FAULT``     fault code of the last run (0: none), set by compiled code
``W_FAULT_PC``  pc of the faulting instruction
``W_ARG0..2``   fault details (address, size, access kind...)
``W_PC``        pc of the helper being called (for faults raised by helpers)
``W_MEM``       this run's ``mem`` address and length (stored by the code
``W_MEM_LEN``   when helpers or checks need them)
``W_STACK``     lowest address of this run's stack frames, and the current
``W_DEPTH``     local-call depth (frame 0 = the entry function)
``W_BUFS``      address and count of the (start, length) table of host
``W_NBUFS``     buffers made addressable with ``address_of``
``W_BUDGET``    instructions left (checked mode)
maps            ``MAP_WORDS`` words per map from ``W_MAPS``: storage address,
                storage length; a map handle is the address of its first word
helpers         one function pointer per callback slot after the maps
==============  =============================================================

This module also turns a fault recorded in the block into the
:class:`~bpfvm.errors.VmFault` the interpreter would raise (same pc, same
message shape; addresses are the JIT's real ones).  It emits no code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bpfvm.engine import FAULT

W_FAULT, W_FAULT_PC, W_ARG0, W_ARG1, W_ARG2, W_PC = range(6)
W_MEM, W_MEM_LEN, W_STACK, W_DEPTH, W_BUFS, W_NBUFS, W_BUDGET = range(6, 13)
W_MAPS = 16
MAP_WORDS = 2  # storage address, storage length

MAX_FRAMES = 8  # as the interpreter: the entry frame plus 7 nested local calls
STACK_SIZE = 512
FRAME_STRIDE = 512  # distance between frames (checked mode leaves a gap: 2 * STACK_SIZE)
FAULT_R0 = FAULT  # what a faulting run's compiled function returns (the engine contract's)

# fault codes written to W_FAULT
F_PYTHON = 1  # a helper callback raised; the exception is kept by the engine
F_CALLX = 2  # arg0: the register value
F_DEPTH = 3
F_OFF_END = 4
F_ACCESS = 5  # arg0: address, arg1: size, arg2: 1 for a write
F_BUDGET = 6
F_NOT_MAP = 7  # arg0: the value passed as a map handle
F_NO_IMPL = 8  # arg0: helper id


def env_words(n_maps: int, n_slots: int) -> int:
    """Size of an environment block, in words."""
    return W_MAPS + MAP_WORDS * n_maps + n_slots


def helper_word(n_maps: int, slot: int) -> int:
    return W_MAPS + MAP_WORDS * n_maps + slot


@dataclass(frozen=True, slots=True)
class Span:
    """A memory object as the interpreter names it, at its real address here.

    ``origin`` is the offset shown as the reference point (the top of a stack
    frame); ``window`` is ``(stride, lo, size)`` for map storage.
    """

    name: str
    start: int
    size: int
    origin: int = 0
    window: tuple[int, int, int] | None = None

    def contains(self, addr: int, size: int) -> bool:
        off = addr - self.start
        if off < 0 or off + size > self.size:
            return False
        if self.window is None:
            return True
        stride, lo, vsize = self.window
        within = off % stride
        return lo <= within and within + size <= lo + vsize

    def where(self, addr: int) -> str:
        """``name+off, size N`` as :meth:`bpfvm.interp.memory.MemObject.where` prints it."""
        off = addr - self.start
        text = f"{self.name}{off - self.origin:+d}"
        if self.window is None:
            return f"{text}, size {self.size}"
        stride, lo, size = self.window
        slot, within = divmod(off, stride)
        if 0 <= off < self.size and lo <= within < lo + size:
            return f"{self.name} entry {slot} value+{within - lo}, value size {size}"
        return f"{text}, outside any value of size {size}"


NEAR = 1 << 31  # an address this close to an object is reported against it


def access_message(regions: list[Span], addr: int, size: int, what: str) -> str:
    """The interpreter's message for an invalid access at a real address."""
    head = f"invalid {what} of {size} byte{'' if size == 1 else 's'} at {addr:#x}"
    if addr < (1 << 32):
        return f"{head} (null pointer)"

    def distance(r: Span) -> int:
        if addr < r.start:
            return r.start - addr
        return max(0, addr - (r.start + r.size) + 1)

    near = [r for r in regions if distance(r) < NEAR]
    if not near:
        return f"{head} (no object at this address)"
    return f"{head} ({min(near, key=distance).where(addr)})"


def find_region(regions: list[Span], addr: int, size: int) -> Span | None:
    for r in regions:
        if r.contains(addr, size):
            return r
    return None


# fault code -> message from (arg0, arg1, arg2, context); context supplies names and regions
@dataclass(frozen=True, slots=True)
class FaultContext:
    max_frames: int
    budget: int
    helper_name: Callable[[int], str]
    regions: Callable[[], list[Span]]


def _access(a0: int, a1: int, a2: int, c: FaultContext) -> str:
    return access_message(c.regions(), a0, a1, "write" if a2 else "read")


MESSAGES: dict[int, Callable[[int, int, int, FaultContext], str]] = {
    F_CALLX: lambda a0, a1, a2, c: f"callx to unknown helper {a0}",
    F_DEPTH: lambda a0, a1, a2, c: f"call depth limit of {c.max_frames} frames exceeded",
    F_OFF_END: lambda a0, a1, a2, c: "ran off the end of the program",
    F_ACCESS: _access,
    F_BUDGET: lambda a0, a1, a2, c: f"instruction budget of {c.budget} exhausted",
    F_NOT_MAP: lambda a0, a1, a2, c: f"{a0:#x} is not a map handle",
    F_NO_IMPL: lambda a0, a1, a2, c: f"helper {c.helper_name(a0)} has no implementation",
}
