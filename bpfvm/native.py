"""Native functions as Python builtins: the host target machine, LLVM's O3
pipeline over a module, and CPython's ``PyCFunction_NewEx`` over a
compiled entry point.

A builtin made here is called as cheaply as ``len``: no ctypes argument or
result conversion.  :func:`python_api` gives the C-API functions such an
entry point calls, or None where ``ctypes.pythonapi`` is not CPython's
(callers then keep their Python code).  The JIT's bound calls and the MM
core's compiled allocator both use this module.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

import llvmlite.binding as llvm

from bpfvm import usercache

OPT_LEVEL = 3
METH_NOARGS = 0x0004
METH_FASTCALL = 0x0080
# the C API a linked module may call (declared in its text as it needs them)
API_NAMES = ("PyLong_FromUnsignedLongLong", "PyLong_FromLongLong", "PyLong_AsLongLong",
             "PyLong_AsUnsignedLongLongMask", "PyObject_GetAttr", "PyObject_Vectorcall",
             "Py_DecRef", "PyErr_Occurred")


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


def optimize(tm: llvm.TargetMachine, text: str) -> llvm.ModuleRef:
    """Parse LLVM assembly ``text`` for ``tm``, verify it, run O3 over it."""
    ref = llvm.parse_assembly(text)
    ref.triple = tm.triple
    ref.data_layout = str(tm.target_data)
    ref.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=OPT_LEVEL)
    builder = llvm.create_pass_builder(tm, tuning)
    builder.getModulePassManager().run(ref, builder)
    return ref


def cached_object(tm: llvm.TargetMachine, text: str, name: str) -> bytes:
    """The object code of LLVM assembly ``text`` optimized for ``tm``: from
    the user's cache (:mod:`bpfvm.usercache`, keyed by the text, llvmlite's
    version and the target) or compiled now and stored there."""
    import llvmlite

    key = usercache.digest(text, llvmlite.__version__, tm.triple, llvm.get_host_cpu_name(),
                           llvm.get_host_cpu_features().flatten())
    path = usercache.cache_dir() / f"{name}-{key}.o"
    obj = usercache.read_checked(path)
    if obj is None:
        obj = tm.emit_object(optimize(tm, text))
        usercache.write_checked(path, obj)
    return obj


class MethodDef(ctypes.Structure):
    """CPython's ``PyMethodDef``."""

    _fields_ = [("name", ctypes.c_char_p), ("meth", ctypes.c_void_p),
                ("flags", ctypes.c_int), ("doc", ctypes.c_char_p)]


@functools.cache
def python_api() -> dict[str, int] | None:
    """Addresses of the C-API functions native entry points call (the int
    conversions, attribute lookup, reference release, vectorcall and the
    error test of :data:`API_NAMES`), or None where there is no CPython C API."""
    api = getattr(ctypes, "pythonapi", None)
    try:
        found = {n: ctypes.cast(getattr(api, n), ctypes.c_void_p).value for n in API_NAMES}
        api.PyCFunction_NewEx  # type: ignore[union-attr]  # noqa: B018
    except AttributeError:
        return None
    return found if all(found.values()) else None  # type: ignore[return-value]


def builtin(defn: MethodDef, bound: object = None) -> Callable[..., object]:
    """A builtin function object for ``defn`` (which must outlive it),
    whose C function gets ``bound`` as its ``self``; only where
    :func:`python_api` is not None."""
    new = ctypes.pythonapi.PyCFunction_NewEx
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.POINTER(MethodDef), ctypes.py_object, ctypes.py_object]
    return new(ctypes.pointer(defn), bound, None)


def fastcall_ir(name: str, nargs: int, bound: bool = False) -> str:
    """LLVM assembly of ``py_<name>``, a ``METH_FASTCALL`` entry point that
    converts int arguments (``PyLong_AsLongLong``), calls ``i64 @name(ptr,
    i64...)`` and returns its result as an int.  The pointer is the first
    of ``nargs`` arguments, or, when ``bound``, the int the builtin was
    made with (:func:`builtin`), ahead of ``nargs`` arguments.  Builtins
    made of it trust their callers: no count or type check."""
    lines = [f"define ptr @py_{name}(ptr %self, ptr %args, i64 %nargs) {{"]
    if bound:
        lines.append("  %v0 = call i64 @PyLong_AsLongLong(ptr %self)")
    first = 1 if bound else 0
    for k in range(nargs):
        v = k + first
        lines += [f"  %a{k}p = getelementptr ptr, ptr %args, i64 {k}",
                  f"  %a{k} = load ptr, ptr %a{k}p",
                  f"  %v{v} = call i64 @PyLong_AsLongLong(ptr %a{k})"]
    lines.append("  %d = inttoptr i64 %v0 to ptr")
    args = ", ".join(["ptr %d"] + [f"i64 %v{k}" for k in range(1, nargs + first)])
    lines += [f"  %r = call i64 @{name}({args})",
              "  %out = call ptr @PyLong_FromLongLong(i64 %r)",
              "  ret ptr %out", "}"]
    return "\n".join(lines) + "\n"


# what every module linked here may use: the C-API conversions; @word(d, k),
# the k-th word of a descriptor (an array of addresses) as a pointer; element i
# of the descriptor's k-th array: @at64 / @get32 (sign-extended) read it,
# @set8 / @set32 store the low bits of a value, @add64 adds to it
_PRELUDE = """declare i64 @PyLong_AsLongLong(ptr)
declare ptr @PyLong_FromLongLong(i64)

define internal ptr @word(ptr %d, i64 %k) alwaysinline {
  %p = getelementptr i64, ptr %d, i64 %k
  %w = load i64, ptr %p
  %q = inttoptr i64 %w to ptr
  ret ptr %q
}
define internal i64 @at64(ptr %d, i64 %k, i64 %i) alwaysinline {
  %a = call ptr @word(ptr %d, i64 %k)
  %p = getelementptr i64, ptr %a, i64 %i
  %v = load i64, ptr %p
  ret i64 %v
}

define internal void @add64(ptr %d, i64 %k, i64 %i, i64 %n) alwaysinline {
  %a = call ptr @word(ptr %d, i64 %k)
  %p = getelementptr i64, ptr %a, i64 %i
  %v = load i64, ptr %p
  %v1 = add i64 %v, %n
  store i64 %v1, ptr %p
  ret void
}

define internal void @set8(ptr %d, i64 %k, i64 %i, i64 %v) alwaysinline {
  %a = call ptr @word(ptr %d, i64 %k)
  %p = getelementptr i8, ptr %a, i64 %i
  %v8 = trunc i64 %v to i8
  store i8 %v8, ptr %p
  ret void
}

define internal void @set32(ptr %d, i64 %k, i64 %i, i64 %v) alwaysinline {
  %a = call ptr @word(ptr %d, i64 %k)
  %p = getelementptr i32, ptr %a, i64 %i
  %v32 = trunc i64 %v to i32
  store i32 %v32, ptr %p
  ret void
}

define internal i64 @get32(ptr %d, i64 %k, i64 %i) alwaysinline {
  %a = call ptr @word(ptr %d, i64 %k)
  %p = getelementptr i32, ptr %a, i64 %i
  %v32 = load i32, ptr %p
  %v = sext i32 %v32 to i64
  ret i64 %v
}
"""
_LINKED: list[object] = []  # linked code and its method records live as long as the process


def link_entry_points(text: str, entries: tuple[tuple[str, int | None, bool], ...],
                      cache_name: str) -> dict[str, MethodDef] | None:
    """Compile LLVM assembly ``text`` (functions taking a pointer and i64s,
    returning i64; it may call the C API of :data:`API_NAMES`, declaring
    what it calls beyond the prelude's, and the descriptor accessors of
    ``_PRELUDE``) with a :func:`fastcall_ir` entry point for each (name,
    nargs, bound) of ``entries`` (nargs None: ``text`` defines ``py_<name>``,
    a ``METH_FASTCALL`` entry point, itself); the object
    code is kept in the user's cache as ``cache_name``.  Returns the method
    record of each entry point by name (:func:`builtin` makes functions of
    them), or None where there is no CPython C API or ``BPFVM_NATIVE=0``
    asks for none (callers then run their Python steps).  The code stays
    loaded for the life of the process."""
    api = python_api()
    if api is None or os.environ.get("BPFVM_NATIVE", "1") == "0":
        return None
    tm = host_target_machine()
    full = _PRELUDE + text + "".join(fastcall_ir(*e) for e in entries if e[1] is not None)
    obj = cached_object(tm, full, cache_name)
    jit = llvm.create_lljit_compiler(tm)
    lib = llvm.JITLibraryBuilder().add_object_img(obj)
    for name in API_NAMES:
        lib.import_symbol(name, api[name])
    for name, _, _ in entries:
        lib.export_symbol(f"py_{name}")
    tracker = lib.link(jit, cache_name)
    defs = {name: MethodDef(name.encode(), tracker[f"py_{name}"], METH_FASTCALL, None)
            for name, _, _ in entries}
    _LINKED.append((jit, tracker, defs))
    return defs
