"""From IR to native code: LLVM O3 (new pass manager), ORC LLJIT, and the compile cache.

:class:`JitCache` compiles a program for a :class:`~bpfvm.jit.ir.Layout`
once and hands the same :class:`Compiled` code to every engine asking for
the same bytes, hook and layout again (engine-specific data lives in each
engine's state block, never in the code).  A compiled program exports one
function, ``bpf_main``.  Once per cache, a small module of
:data:`BOUND_SLOTS` zero-argument entry points ``bpf_bound<k>()`` is
compiled; each calls the function in row ``k`` of the global ``bpf_rows``
with that row's (state, r1, r2): calling a native function without
arguments is the cheapest call ctypes can make.  Cheaper still, and what
the MM core's hot path calls: ``bpf_pybound<k>`` wraps ``bpf_bound<k>`` as
a CPython ``METH_NOARGS`` function returning r0 as a Python int, made a
builtin function object once per row (:attr:`JitCache.pybound`; a call
costs what calling ``len`` costs, not a ctypes call's argument and result
conversion; None where ``ctypes.pythonapi`` is not CPython's).
:meth:`JitCache.acquire` hands a row to one engine at a time.  (Compiling
the entry points with every program instead would double the compile time
of a small program: LLVM's cost is per function.)

Code is optimized for the host CPU and lives as long as a :class:`Compiled`
referring to it (the cache keeps the most recent ``capacity`` entries).
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import llvmlite.binding as llvm
from llvmlite import ir

from bpfvm.jit.ir import I64, MAIN_NAME, PTR, Layout
from bpfvm.jit.lower import lower
from bpfvm.native import METH_NOARGS, MethodDef, builtin, host_target_machine, optimize, python_api
from bpfvm.program import Program

BOUND_SLOTS = 32  # zero-argument entry points per cache, shared by its programs
ROWS_NAME = "bpf_rows"
PYLONG_NAME = "PyLong_FromUnsignedLongLong"
ROW_WORDS = 4  # function, state, r1, r2


@dataclass
class Compiled:
    """Native code for one (program, layout)."""

    key: tuple
    tracker: object  # the LLJIT resource tracker: the code lives as long as it does
    main: int  # address of i64 bpf_main(ptr state, i64 r1, i64 r2)
    seconds: float  # time spent compiling
    ir_size: int  # instructions of IR before optimization


def _entry_points() -> ir.Module:
    """``bpf_bound<k>()`` = ``rows[k][0](rows[k][1], rows[k][2], rows[k][3])``;
    ``bpf_pybound<k>(self, unused)`` = ``PyLong_FromUnsignedLongLong(bpf_bound<k>())``."""
    module = ir.Module("bpf_bound")
    to_int = ir.Function(module, ir.FunctionType(PTR, [I64]), PYLONG_NAME)
    row = ir.ArrayType(I64, ROW_WORDS)
    rows = ir.GlobalVariable(module, ir.ArrayType(row, BOUND_SLOTS), ROWS_NAME)
    rows.initializer = ir.Constant(rows.value_type, None)
    main_type = ir.FunctionType(I64, [PTR, I64, I64])
    for k in range(BOUND_SLOTS):
        fn = ir.Function(module, ir.FunctionType(I64, []), f"bpf_bound{k}")
        b = ir.IRBuilder(fn.append_basic_block())
        words = [b.load(b.gep(rows, [I64(0), I64(k), I64(w)], source_etype=rows.value_type),
                        typ=I64) for w in range(ROW_WORDS)]
        target = b.inttoptr(words[0], main_type.as_pointer())
        b.ret(b.call(target, [b.inttoptr(words[1], PTR), words[2], words[3]], tail=True))
        py = ir.Function(module, ir.FunctionType(PTR, [PTR, PTR]), f"bpf_pybound{k}")
        b = ir.IRBuilder(py.append_basic_block())
        b.ret(b.call(to_int, [b.call(fn, [])], tail=True))
    return module


def _count_instructions(module: ir.Module) -> int:
    return sum(len(block.instructions) for fn in module.functions for block in fn.blocks)


class JitCache:
    """Compiled programs by (bytecode, hook, layout); see the module doc."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._tm = host_target_machine()
        self._jit = llvm.create_lljit_compiler(host_target_machine())
        self._entries: OrderedDict[tuple, Compiled] = OrderedDict()
        self._names = itertools.count()
        self.hits = 0
        self.misses = 0
        self._rows_tracker: object | None = None  # the entry points, made on first use
        self.rows = 0  # address of bpf_rows (BOUND_SLOTS rows of ROW_WORDS words)
        self.bound: tuple[int, ...] = ()  # addresses of i64 bpf_bound<k>()
        self.pybound: tuple[Callable[[], int], ...] | None = None  # bpf_pybound<k> as builtins
        self._defs: ctypes.Array | None = None  # their PyMethodDefs (kept as long as they are)
        self.free: list[int] = []

    def acquire(self) -> int | None:
        """A free row of ``bpf_rows`` (None when all are taken); its entry
        point is ``bound[row]``, its words at ``rows + 8 * ROW_WORDS * row``."""
        if self._rows_tracker is None:
            api = python_api()
            obj = self._tm.emit_object(self._optimize(_entry_points()))
            lib = llvm.JITLibraryBuilder().add_object_img(obj)
            lib.import_symbol(PYLONG_NAME, api[PYLONG_NAME] if api else 0)
            names = [ROWS_NAME] + [f"bpf_bound{k}" for k in range(BOUND_SLOTS)]
            for name in names + [f"bpf_pybound{k}" for k in range(BOUND_SLOTS)]:
                lib.export_symbol(name)
            tracker = lib.link(self._jit, f"bpf_bound{next(self._names)}")
            self._rows_tracker = tracker
            self.rows = tracker[ROWS_NAME]
            self.bound = tuple(tracker[f"bpf_bound{k}"] for k in range(BOUND_SLOTS))
            if api is not None:
                self._defs = defs = (MethodDef * BOUND_SLOTS)()
                for k in range(BOUND_SLOTS):
                    defs[k].name, defs[k].flags = b"bpf_bound", METH_NOARGS
                    defs[k].meth = tracker[f"bpf_pybound{k}"]
                self.pybound = tuple(builtin(defs[k]) for k in range(BOUND_SLOTS))
            self.free = list(range(BOUND_SLOTS))
        return self.free.pop() if self.free else None

    def release(self, row: int) -> None:
        self.free.append(row)

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, program: Program, layout: Layout) -> Compiled | None:
        """The code already compiled for ``program`` and ``layout``, if any."""
        key = (program.bytecode(), program.hook, layout)
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            self._entries.move_to_end(key)
        return found

    def get(self, program: Program, layout: Layout) -> Compiled:
        """Compiled code for ``program`` (validated bytecode) and ``layout``."""
        found = self.find(program, layout)
        if found is not None:
            return found
        key = (program.bytecode(), program.hook, layout)
        self.misses += 1
        compiled = self._compile(key, program, layout)
        self._entries[key] = compiled
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return compiled

    def optimized_ir(self, program: Program, layout: Layout) -> str:
        """The optimized IR of a program (for inspection and tests)."""
        return str(self._optimize(lower(program, layout)))

    def assembly(self, program: Program, layout: Layout) -> str:
        """The native assembly of a program (for inspection)."""
        return self._tm.emit_assembly(self._optimize(lower(program, layout)))

    def _optimize(self, module: ir.Module) -> llvm.ModuleRef:
        return optimize(self._tm, str(module))

    def _compile(self, key: tuple, program: Program, layout: Layout) -> Compiled:
        start = time.perf_counter()
        module = lower(program, layout)
        size = _count_instructions(module)
        obj = self._tm.emit_object(self._optimize(module))
        lib = llvm.JITLibraryBuilder().add_object_img(obj)
        lib.export_symbol(MAIN_NAME)
        tracker = lib.link(self._jit, f"bpf{next(self._names)}")
        return Compiled(key, tracker, tracker[MAIN_NAME], time.perf_counter() - start, size)


@functools.cache
def default_cache() -> JitCache:
    """The process-wide compile cache engines use unless given their own."""
    return JitCache()
