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
from collections.abc import Callable

import llvmlite.binding as llvm

from bpfvm import usercache

OPT_LEVEL = 3
METH_NOARGS = 0x0004
METH_FASTCALL = 0x0080


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
    """Addresses of the C-API functions native entry points call
    (``PyLong_FromUnsignedLongLong``, ``PyLong_FromLongLong``,
    ``PyLong_AsLongLong``), or None where there is no CPython C API."""
    api = getattr(ctypes, "pythonapi", None)
    names = ("PyLong_FromUnsignedLongLong", "PyLong_FromLongLong", "PyLong_AsLongLong")
    try:
        found = {n: ctypes.cast(getattr(api, n), ctypes.c_void_p).value for n in names}
        api.PyCFunction_NewEx  # type: ignore[union-attr]  # noqa: B018
    except AttributeError:
        return None
    return found if all(found.values()) else None  # type: ignore[return-value]


def builtin(defn: MethodDef) -> Callable[..., object]:
    """A builtin function object for ``defn`` (which must outlive it); only
    where :func:`python_api` is not None."""
    new = ctypes.pythonapi.PyCFunction_NewEx
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.POINTER(MethodDef), ctypes.py_object, ctypes.py_object]
    return new(ctypes.pointer(defn), None, None)
