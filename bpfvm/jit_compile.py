"""From IR to native code: LLVM O3 (new pass manager), ORC LLJIT, and the compile cache.

:class:`JitCache` compiles a program for a :class:`~bpfvm.jit_ir.Layout`
once and hands the same :class:`Compiled` code to every engine asking for
the same bytes, hook and layout again (engine-specific data lives in each
engine's state block, never in the code).  Besides ``bpf_main`` each
compiled program exports :data:`BOUND_SLOTS` zero-argument entry points
``bpf_bound<k>()`` that read (state, r1, r2) from row ``k`` of the global
``bpf_slots``: calling a native function without arguments is the cheapest
call ctypes can make, which is what the MM core's hot path wants.
:meth:`Compiled.acquire` hands a row to one engine at a time.

Code is optimized for the host CPU and lives as long as a :class:`Compiled`
referring to it (the cache keeps the most recent ``capacity`` entries).
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import llvmlite.binding as llvm
from llvmlite import ir

from bpfvm.jit_ir import I64, MAIN_NAME, PTR, Layout
from bpfvm.jit_lower import lower
from bpfvm.program import Program

BOUND_SLOTS = 8
SLOTS_NAME = "bpf_slots"
OPT_LEVEL = 3


@functools.cache
def _initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def host_target_machine() -> llvm.TargetMachine:
    """A target machine for this CPU, position-independent code, optimizing."""
    _initialize()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=OPT_LEVEL, reloc="pic", codemodel="small")


@dataclass
class Compiled:
    """Native code for one (program, layout): entry addresses and bound rows."""

    key: tuple
    tracker: object  # the LLJIT resource tracker: the code lives as long as it does
    main: int  # address of i64 bpf_main(ptr state, i64 r1, i64 r2)
    slots: int  # address of the bpf_slots table (BOUND_SLOTS rows of 3 words)
    bound: tuple[int, ...]  # addresses of i64 bpf_bound<k>()
    seconds: float  # time spent compiling
    ir_size: int  # instructions of IR before optimization
    free: list[int] = field(default_factory=lambda: list(range(BOUND_SLOTS)))

    def acquire(self) -> int | None:
        """A free row of ``bpf_slots`` (None when all are taken)."""
        return self.free.pop() if self.free else None

    def release(self, row: int) -> None:
        self.free.append(row)


def _add_bound_entries(module: ir.Module) -> None:
    """``bpf_bound<k>()`` = ``bpf_main(slots[k][0], slots[k][1], slots[k][2])``."""
    row = ir.ArrayType(I64, 3)
    slots = ir.GlobalVariable(module, ir.ArrayType(row, BOUND_SLOTS), SLOTS_NAME)
    slots.initializer = ir.Constant(slots.value_type, None)
    main = module.globals[MAIN_NAME]
    main.attributes.add("noinline")
    for k in range(BOUND_SLOTS):
        fn = ir.Function(module, ir.FunctionType(I64, []), f"bpf_bound{k}")
        b = ir.IRBuilder(fn.append_basic_block())
        words = [b.load(b.gep(slots, [I64(0), I64(k), I64(w)], source_etype=slots.value_type),
                        typ=I64) for w in range(3)]
        r0 = b.call(main, [b.inttoptr(words[0], PTR), words[1], words[2]], tail=True)
        b.ret(r0)


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
        module.triple = self._tm.triple
        module.data_layout = str(self._tm.target_data)
        ref = llvm.parse_assembly(str(module))
        ref.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=OPT_LEVEL)
        builder = llvm.create_pass_builder(self._tm, tuning)
        builder.getModulePassManager().run(ref, builder)
        return ref

    def _compile(self, key: tuple, program: Program, layout: Layout) -> Compiled:
        start = time.perf_counter()
        module = lower(program, layout)
        size = _count_instructions(module)
        _add_bound_entries(module)
        obj = self._tm.emit_object(self._optimize(module))
        names = [MAIN_NAME, SLOTS_NAME] + [f"bpf_bound{k}" for k in range(BOUND_SLOTS)]
        lib = llvm.JITLibraryBuilder().add_object_img(obj)
        for name in names:
            lib.export_symbol(name)
        tracker = lib.link(self._jit, f"bpf{next(self._names)}")
        return Compiled(key, tracker, tracker[MAIN_NAME], tracker[SLOTS_NAME],
                        tuple(tracker[f"bpf_bound{k}"] for k in range(BOUND_SLOTS)),
                        time.perf_counter() - start, size)


@functools.cache
def default_cache() -> JitCache:
    """The process-wide compile cache engines use unless given their own."""
    return JitCache()
