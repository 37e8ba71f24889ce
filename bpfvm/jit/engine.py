"""The llvmlite JIT engine: the interpreter's contract, native speed.

``Jit(program, helpers, maps=None, env=None, checked=False)`` compiles the
program (or takes it from the compile cache) and implements the engine
contract of :class:`~bpfvm.interp.interpreter.Interpreter`: ``program``, ``maps``,
``address_of(buf)``, ``run(mem) -> r0`` raising
:class:`~bpfvm.errors.VmFault` on a fault, and the helper-facing API
(``env``, ``pc``, ``read``, ``write``, ``map_at``, ``map_value_addr``).
Pointers are real host addresses; map storage, ``mem`` and host buffers
are pinned (``ctypes.from_buffer``) while the engine can reach them.

By default the code trusts the verifier (no bounds checks, no budget);
``checked=True`` compiles checks that fault like the interpreter (same pc,
same message shape).  Helpers other than ``map_lookup_elem`` (native) run
in Python through ctypes callbacks; an exception there becomes a fault of
the run, never a crash.

Hot path for the MM core: :meth:`Jit.bind` returns a zero-argument ctypes
function running the program on a fixed buffer; it returns r0, or
:data:`~bpfvm.engine.FAULT` when the run faulted (then :meth:`Jit.check` raises the
fault).  :attr:`Jit.entry_address` is the C function
``uint64_t f(void *state, uint64_t r1, uint64_t r2)`` with
:attr:`Jit.state_address` as first argument.
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Callable

from bpfvm import isa
from bpfvm.engine import INSN_BUDGET, ProgramFault
from bpfvm.errors import BpfvmError, VmFault
from bpfvm.helpers import HelperSpec, HelperTable
from bpfvm.isa.insn import validate
from bpfvm.jit import abi as je
from bpfvm.jit.compile import BOUND_SLOTS, ROW_WORDS, Compiled, JitCache, default_cache
from bpfvm.jit.ir import Layout, MapGeom
from bpfvm.maps import Map, make_maps
from bpfvm.program import Program
from bpfvm.stdhelpers import map_lookup_elem
from bpfvm.vmenv import VmEnv

SCRATCH_SIZE = 4096  # run() copies a mem of up to this many bytes instead of pinning it
M64 = (1 << 64) - 1
CALLBACK = ctypes.CFUNCTYPE(ctypes.c_uint64, *[ctypes.c_uint64] * 5)
MAIN = ctypes.PYFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)
BOUND = ctypes.PYFUNCTYPE(ctypes.c_uint64)
NATIVE_HELPERS = {1: map_lookup_elem}  # helper id -> implementation lowered natively


def _geometry(m: Map) -> MapGeom:
    return MapGeom(m.kind, m.key_size, m.value_size, m.max_entries, m.stride, m.value_offset,
                   len(m.buf), getattr(m, "capacity", m.max_entries))


def make_layout(maps: list[Map], helpers: HelperTable, checked: bool) -> Layout:
    native = {s.id for s in helpers if NATIVE_HELPERS.get(s.id) is s.impl is not None}
    missing = {s.id for s in helpers if s.impl is None}
    slots = tuple(s.id for s in helpers if s.id not in native and s.id not in missing)
    return Layout(tuple(_geometry(m) for m in maps), slots, frozenset(native),
                  frozenset(missing), checked)


def _pin(buf: bytearray) -> tuple[ctypes.Array, int]:
    """A ctypes view keeping ``buf`` at a fixed address, and that address."""
    view = (ctypes.c_char * max(len(buf), 1)).from_buffer(buf) if buf else \
        ctypes.create_string_buffer(1)
    return view, ctypes.addressof(view)


class Jit:
    """A program compiled to native code (see module doc)."""

    def __init__(self, program: Program, helpers: HelperTable, maps: list[Map] | None = None,
                 env: VmEnv | None = None, *, checked: bool = False,
                 budget: int = INSN_BUDGET, cache: JitCache | None = None) -> None:
        self.program = program
        self.helpers = helpers
        self.maps = maps if maps is not None else make_maps(program.maps)
        _check_maps(program, self.maps)
        self.env = env if env is not None else VmEnv()
        self.checked = checked
        layout = make_layout(self.maps, helpers, checked)
        self.layout = layout
        cache = cache if cache is not None else default_cache()
        found = cache.find(program, layout)  # same bytes, same helper ids: validated before
        if found is None:
            validate(program.insns, helpers)
            found = cache.get(program, layout)
        self.compiled: Compiled = found
        self.cache = cache
        self.entry_address = self.compiled.main
        words = je.env_words(len(self.maps), len(layout.slots))
        self._state = (ctypes.c_uint64 * words)()
        self.state_address = ctypes.addressof(self._state)
        self._pins: list[object] = []
        self._binds: dict[tuple[int, int], Callable[[], int]] = {}  # (address, length) bound
        self._natives: dict[tuple[int, int], int] = {}  # (address, length): its row's entry
        self._storage: list[int] = []
        for i, m in enumerate(self.maps):
            view, addr = _pin(m.buf)
            self._pins.append(view)
            self._storage.append(addr)
            self._state[je.W_MAPS + je.MAP_WORDS * i] = addr
            self._state[je.W_MAPS + je.MAP_WORDS * i + 1] = len(m.buf)
        self._callbacks = [CALLBACK(self._callback(helpers.get(hid))) for hid in layout.slots]
        for slot, cb in enumerate(self._callbacks):
            address = ctypes.cast(cb, ctypes.c_void_p).value
            self._state[je.helper_word(len(self.maps), slot)] = address
        self._buffers: dict[int, tuple[object, int, str, bytearray]] = {}
        self._buf_table = (ctypes.c_uint64 * 0)()
        self._state[je.W_BUDGET] = budget
        self._main = MAIN(self.compiled.main)
        self._rows: list[int] = []
        self._writes = _may_write(program)
        self._scratch = bytearray(SCRATCH_SIZE)
        self._scratch_view, scratch_address = _pin(self._scratch)
        self._run_fn, self._run_words, self._run_len = self._bound_to(scratch_address, 0)
        self._pending: VmFault | None = None
        weakref.finalize(self, _release_rows, cache, self._rows)

    # -- engine contract -------------------------------------------------
    def address_of(self, buf: bytearray, name: str | None = None) -> int:
        """The address of ``buf[0]`` for programs; stable for the buffer's life."""
        entry = self._buffers.get(id(buf))
        if entry is None:
            view, addr = _pin(buf)
            entry = (view, addr, name or f"buffer {len(self._buffers)}", buf)
            self._buffers[id(buf)] = entry
            table = (ctypes.c_uint64 * (2 * len(self._buffers)))()
            for k, (_, a, _, b) in enumerate(self._buffers.values()):
                table[2 * k], table[2 * k + 1] = a, len(b)
            self._buf_table = table
            self._state[je.W_BUFS] = ctypes.addressof(table)
            self._state[je.W_NBUFS] = len(self._buffers)
        return entry[1]

    def run(self, mem: bytearray | None = None) -> int:
        """Run once; returns r0 (unsigned 64-bit).  ``mem`` is modified in place.

        A ``mem`` of up to :data:`SCRATCH_SIZE` bytes is copied into a buffer of
        the engine and back (cheaper than pinning it); larger ones, and buffers
        also made addressable with :meth:`address_of`, are used in place.
        """
        if mem is None:
            r0 = self._main(self.state_address, 0, 0)
        else:
            if not isinstance(mem, bytearray):
                mem = bytearray(mem)
            n = len(mem)
            if self._run_fn is not None and n <= SCRATCH_SIZE and id(mem) not in self._buffers:
                scratch = self._scratch
                scratch[:n] = mem
                if n != self._run_len:
                    self._run_words[3] = self._run_len = n
                r0 = self._run_fn()
                if self._writes:
                    mem[:] = scratch[:n]
            else:
                view = ctypes.c_char.from_buffer(mem) if n else self._scratch_view
                r0 = self._main(self.state_address, ctypes.addressof(view), n)
                del view
        if self._state[je.W_FAULT]:
            raise self._fault()
        return r0

    @property
    def budget(self) -> int:
        """Instructions a checked run may execute (unchecked code has no budget)."""
        return self._state[je.W_BUDGET]

    @budget.setter
    def budget(self, value: int) -> None:
        self._state[je.W_BUDGET] = value

    # -- fast path -------------------------------------------------------
    def bind(self, buf: bytearray) -> Callable[[], int]:
        """A zero-argument function running the program with r1 = ``buf``, r2 = its length.

        It returns r0, or :data:`~bpfvm.engine.FAULT` after a fault: then :meth:`check`
        raises it.  ``buf`` is pinned for the engine's life; write the
        context into it in place before each call.
        """
        view, addr = _pin(buf)
        again = self._binds.get((addr, len(buf)))
        if again is not None:  # bound to this buffer before: the same row, no new one
            return again
        self._pins.append(view)
        fn, _, _ = self._bound_to(addr, len(buf))
        if fn is None:  # every row taken: a (slower) call with arguments
            main, state, n = self._main, self.state_address, len(buf)
            fn = lambda: main(state, addr, n)  # noqa: E731
        self._binds[(addr, len(buf))] = fn
        return fn

    def native_entry(self, buf: bytearray) -> int | None:
        """The address of a native ``uint64_t f(void)`` running the program
        on ``buf`` as :meth:`bind`'s function does (binding it first), for
        compiled callers; None when no bound row was free."""
        self.bind(buf)
        return self._natives.get((_pin(buf)[1], len(buf)))

    def _bound_to(self, addr: int, length: int) -> tuple[Callable[[], int] | None,
                                                         ctypes.Array | None, int]:
        """A zero-argument entry point of a free row set to (this engine, addr, length)."""
        cache = self.cache
        row = cache.acquire()
        if row is None:
            return None, None, length
        self._rows.append(row)
        self._natives[(addr, length)] = cache.bound[row]
        words = _row_words(cache, row)
        words[0], words[1], words[2], words[3] = self.entry_address, self.state_address, \
            addr, length
        fn = BOUND(cache.bound[row]) if cache.pybound is None else cache.pybound[row]
        return fn, words, length

    def check(self) -> None:
        """Raise the fault of the last run, if it faulted (for :meth:`bind` callers)."""
        if self._state[je.W_FAULT]:
            raise self._fault()

    # -- what helpers use (see bpfvm.stdhelpers) ---------------------------
    @property
    def pc(self) -> int:
        return self._state[je.W_PC]

    def read(self, addr: int, size: int) -> bytes:
        self._require(addr, size, "read")
        return ctypes.string_at(addr, size)

    def write(self, addr: int, data: bytes) -> None:
        self._require(addr, len(data), "write")
        ctypes.memmove(addr, bytes(data), len(data))

    def map_at(self, handle: int) -> Map:
        rel = handle - self.state_address - 8 * je.W_MAPS
        index, extra = divmod(rel, 8 * je.MAP_WORDS)
        if extra or not 0 <= index < len(self.maps):
            raise VmFault(self.pc, f"{handle:#x} is not a map handle")
        return self.maps[index]

    def map_value_addr(self, m: Map, offset: int) -> int:
        for i, other in enumerate(self.maps):
            if other is m:
                return self._storage[i] + offset
        raise BpfvmError(f"map '{m.name}' does not belong to this engine")

    # -- internals -------------------------------------------------------
    def regions(self) -> list[je.Span]:
        """The memory objects the current (or last) run may reach, at real addresses."""
        state, out = self._state, []
        if state[je.W_MEM]:
            out.append(je.Span("ctx", state[je.W_MEM], state[je.W_MEM_LEN]))
        if state[je.W_STACK]:
            stride = 2 * je.STACK_SIZE if self.checked else je.FRAME_STRIDE
            frames = je.MAX_FRAMES if (self.checked or self._local_calls()) else 1
            for k in range(frames):
                out.append(je.Span("stack" if k == 0 else f"stack of frame {k}",
                                     state[je.W_STACK] + k * stride, je.STACK_SIZE,
                                     origin=je.STACK_SIZE))
        for i, (m, addr) in enumerate(zip(self.maps, self._storage, strict=True)):
            out.append(je.Span(f"map '{m.name}'", addr, len(m.buf), window=m.window))
            handle = self.state_address + 8 * (je.W_MAPS + je.MAP_WORDS * i)
            out.append(je.Span(f"map '{m.name}' handle", handle, 0))
        for _, addr, name, buf in self._buffers.values():
            out.append(je.Span(name, addr, len(buf)))
        return out

    def _local_calls(self) -> bool:
        return any(i.spec is not None and i.spec.kind is isa.Kind.CALL_LOCAL
                   for i in self.program.insns)

    def _require(self, addr: int, size: int, what: str) -> None:
        addr &= M64
        regions = self.regions()
        if je.find_region(regions, addr, size) is None:
            raise VmFault(self.pc, je.access_message(regions, addr, size, what))

    def _callback(self, spec: HelperSpec | None) -> Callable[..., int]:
        assert spec is not None and spec.impl is not None
        impl, name, state = spec.impl, spec.name, self._state
        ref = weakref.ref(self)

        def callback(r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
            vm = ref()
            if vm is None:
                return 0
            try:
                return (impl(vm, r1, r2, r3, r4, r5) or 0) & M64
            except VmFault as fault:
                vm._pending = fault
            except Exception as exc:  # a helper's bug must not look like ours
                vm._pending = VmFault(vm.pc, f"helper {name} failed: "
                                      f"{type(exc).__name__}: {exc}")
            state[je.W_FAULT] = je.F_PYTHON
            state[je.W_FAULT_PC] = state[je.W_PC]
            return 0
        return callback

    def _fault(self) -> VmFault:
        state = self._state
        code, pc = state[je.W_FAULT], state[je.W_FAULT_PC]
        state[je.W_FAULT] = 0
        if code == je.F_PYTHON and self._pending is not None:
            fault, self._pending = self._pending, None
            pc, message = fault.pc, fault.message
        else:
            context = je.FaultContext(je.MAX_FRAMES, self.budget, self._helper_name,
                                      self.regions)
            message = je.MESSAGES[code](state[je.W_ARG0], state[je.W_ARG1], state[je.W_ARG2],
                                        context)
        return _located(self.program, pc, message)

    def _helper_name(self, helper_id: int) -> str:
        spec = self.helpers.get(helper_id)
        return spec.name if spec else str(helper_id)


def _located(program: Program, pc: int, message: str) -> VmFault:
    """A fault as the interpreter raises it: with the source line when known."""
    loc = program.source[pc] if 0 <= pc < len(program.source) else None
    if loc is None:
        return VmFault(pc, message)
    return ProgramFault(pc, message, str(loc), loc.text)


def _may_write(program: Program) -> bool:
    """False when no instruction of ``program`` can change its memory."""
    writers = (isa.Kind.ST, isa.Kind.STX, isa.Kind.ATOMIC, isa.Kind.CALL, isa.Kind.CALLX)
    return any(i.spec is not None and i.spec.kind in writers for i in program.insns)


def _row_words(cache: JitCache, row: int) -> ctypes.Array:
    return (ctypes.c_uint64 * ROW_WORDS).from_address(cache.rows + 8 * ROW_WORDS * row)


def _release_rows(cache: JitCache, rows: list[int]) -> None:
    for row in rows:
        words = _row_words(cache, row)
        for w in range(ROW_WORDS):
            words[w] = 0
        cache.release(row)


def _check_maps(program: Program, maps: list[Map]) -> None:
    if len(maps) != len(program.maps):
        raise BpfvmError(f"program declares {len(program.maps)} maps, {len(maps)} given")
    for m, d in zip(maps, program.maps, strict=True):
        if m.defn != d:
            raise BpfvmError(f"map '{d.name}': given map {m.defn} does not match {d}")


__all__ = ["BOUND_SLOTS", "SCRATCH_SIZE", "Jit", "make_layout"]
