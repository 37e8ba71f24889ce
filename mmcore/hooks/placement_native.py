"""The placement hook's call compiled: no Python frame between the fault
and the JIT-compiled program.

:func:`native_placement_call` makes a builtin ``call(proc, vma, order) ->
node`` doing what :func:`~mmcore.hooks.placement.placement_call`'s Python
function does, for a program that runs on the JIT:

- it hands the call back to ``generic`` while the hook point is stale or
  its engine has changed since the call was made (both read from
  :attr:`HookPoint.words <mmcore.hooks.dispatch.HookPoint.words>`);
- it counts the call there and writes the fields the program loads
  straight into the context buffer (``proc.home_node``, ``proc.pid``,
  ``vma.hint`` and the zones' ``free_pages`` looked up as attributes;
  u32 fields keep their low 32 bits);
- it calls the program's native entry (:meth:`Jit.native_entry
  <bpfvm.jit.engine.Jit.native_entry>`) and returns r0 when it names a
  node, else ``settle(r0, home)``.

None where nothing can be compiled (no CPython C API,
``BPFVM_NATIVE=0``): the Python call serves.
"""

from __future__ import annotations

import ctypes
import functools
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from bpfvm import native
from mmcore.hooks.dispatch import HookPoint
from mmcore.hooks.specs import MAX_CTX_NODES, PLACEMENT

# descriptor words: the hook point's [calls, stale, generation], the
# context, the entry, nodes, the fields to write (bits of _BITS), generic,
# settle, the attribute names, the generation the call is made for, then
# each node's (normal, movable) zones
(_W_WORDS, _W_CTX, _W_ENTRY, _W_NODES, _W_FLAGS, _W_GENERIC, _W_SETTLE,
 _W_HOME, _W_PID, _W_HINT, _W_FREE, _W_GEN, _W_ZONES) = range(13)
_BITS = {"order": 1, "pid": 2, "home_node": 4, "hint": 8}
_FREE_BIT = 16
_OFF = {f.name: f.offset for f in PLACEMENT.fields}

_IR = f"""declare i64 @PyLong_AsUnsignedLongLongMask(ptr)
declare ptr @PyObject_GetAttr(ptr, ptr)
declare ptr @PyObject_Vectorcall(ptr, ptr, i64, ptr)
declare void @Py_DecRef(ptr)
declare ptr @PyErr_Occurred()
declare ptr @PyLong_FromUnsignedLongLong(i64)

; the int value of o.name (low 64 bits); -1 with an exception set on failure
define internal i64 @attr(ptr %o, ptr %name) {{
  %v = call ptr @PyObject_GetAttr(ptr %o, ptr %name)
  %bad = icmp eq ptr %v, null
  br i1 %bad, label %err, label %ok
ok:
  %x = call i64 @PyLong_AsUnsignedLongLongMask(ptr %v)
  call void @Py_DecRef(ptr %v)
  ret i64 %x
err:
  ret i64 -1
}}

; whether an exception is set after a value of -1
define internal i1 @failed(i64 %x) {{
  %m = icmp eq i64 %x, -1
  br i1 %m, label %look, label %no
look:
  %e = call ptr @PyErr_Occurred()
  %f = icmp ne ptr %e, null
  ret i1 %f
no:
  ret i1 false
}}

define internal void @put32(ptr %ctx, i64 %off, i64 %v) alwaysinline {{
  %p = getelementptr i8, ptr %ctx, i64 %off
  %t = trunc i64 %v to i32
  store i32 %t, ptr %p
  ret void
}}

; o.name's low 32 bits stored at ctx + off; false with an exception set on failure
define internal i1 @attr32(ptr %o, ptr %name, ptr %ctx, i64 %off) alwaysinline {{
  %x = call i64 @attr(ptr %o, ptr %name)
  %bad = call i1 @failed(i64 %x)
  br i1 %bad, label %no, label %yes
yes:
  call void @put32(ptr %ctx, i64 %off, i64 %x)
  ret i1 true
no:
  ret i1 false
}}

define ptr @py_place(ptr %self, ptr %args, i64 %nargs) {{
entry:
  %dv = call i64 @PyLong_AsLongLong(ptr %self)
  %d = inttoptr i64 %dv to ptr
  %hw = call ptr @word(ptr %d, i64 {_W_WORDS})
  %stp = getelementptr i64, ptr %hw, i64 1
  %st = load i64, ptr %stp
  %genp = getelementptr i64, ptr %hw, i64 2
  %gen = load i64, ptr %genp
  %minep = getelementptr i64, ptr %d, i64 {_W_GEN}
  %mine = load i64, ptr %minep
  %other = icmp ne i64 %gen, %mine
  %st1 = icmp ne i64 %st, 0
  %stale = or i1 %st1, %other
  br i1 %stale, label %generic, label %go
generic:
  %g = call ptr @word(ptr %d, i64 {_W_GENERIC})
  %gr = call ptr @PyObject_Vectorcall(ptr %g, ptr %args, i64 %nargs, ptr null)
  ret ptr %gr
go:
  %c = load i64, ptr %hw
  %c1 = add i64 %c, 1
  store i64 %c1, ptr %hw
  %proc = load ptr, ptr %args
  %vmap = getelementptr ptr, ptr %args, i64 1
  %vma = load ptr, ptr %vmap
  %ordp = getelementptr ptr, ptr %args, i64 2
  %ordo = load ptr, ptr %ordp
  %ctx = call ptr @word(ptr %d, i64 {_W_CTX})
  %flp = getelementptr i64, ptr %d, i64 {_W_FLAGS}
  %fl = load i64, ptr %flp
  %hname = call ptr @word(ptr %d, i64 {_W_HOME})
  %home = call i64 @attr(ptr %proc, ptr %hname)
  %hbad = call i1 @failed(i64 %home)
  br i1 %hbad, label %err, label %s_order
s_order:
  %b1 = and i64 %fl, 1
  %w1 = icmp ne i64 %b1, 0
  br i1 %w1, label %do_order, label %s_pid
do_order:
  %ord = call i64 @PyLong_AsUnsignedLongLongMask(ptr %ordo)
  %obad = call i1 @failed(i64 %ord)
  br i1 %obad, label %err, label %put_order
put_order:
  call void @put32(ptr %ctx, i64 {_OFF["order"]}, i64 %ord)
  br label %s_pid
s_pid:
  %b2 = and i64 %fl, 2
  %w2 = icmp ne i64 %b2, 0
  br i1 %w2, label %do_pid, label %s_home
do_pid:
  %pname = call ptr @word(ptr %d, i64 {_W_PID})
  %pok = call i1 @attr32(ptr %proc, ptr %pname, ptr %ctx, i64 {_OFF["pid"]})
  br i1 %pok, label %s_home, label %err
s_home:
  %b4 = and i64 %fl, 4
  %w4 = icmp ne i64 %b4, 0
  br i1 %w4, label %put_home, label %s_hint
put_home:
  call void @put32(ptr %ctx, i64 {_OFF["home_node"]}, i64 %home)
  br label %s_hint
s_hint:
  %b8 = and i64 %fl, 8
  %w8 = icmp ne i64 %b8, 0
  br i1 %w8, label %do_hint, label %s_free
do_hint:
  %iname = call ptr @word(ptr %d, i64 {_W_HINT})
  %iok = call i1 @attr32(ptr %vma, ptr %iname, ptr %ctx, i64 {_OFF["hint"]})
  br i1 %iok, label %s_free, label %err
s_free:
  %np = getelementptr i64, ptr %d, i64 {_W_NODES}
  %n = load i64, ptr %np
  %b16 = and i64 %fl, {_FREE_BIT}
  %w16 = icmp ne i64 %b16, 0
  br i1 %w16, label %loop, label %run
loop:
  %i = phi i64 [0, %s_free], [%i1, %next]
  %more = icmp ult i64 %i, %n
  br i1 %more, label %node, label %run
node:
  %fname = call ptr @word(ptr %d, i64 {_W_FREE})
  %k0 = mul i64 %i, 2
  %k1 = add i64 %k0, {_W_ZONES}
  %zn = call ptr @word(ptr %d, i64 %k1)
  %fa = call i64 @attr(ptr %zn, ptr %fname)
  %fabad = call i1 @failed(i64 %fa)
  br i1 %fabad, label %err, label %second
second:
  %k2 = add i64 %k1, 1
  %zm = call ptr @word(ptr %d, i64 %k2)
  %fb = call i64 @attr(ptr %zm, ptr %fname)
  %fbbad = call i1 @failed(i64 %fb)
  br i1 %fbbad, label %err, label %put_free
put_free:
  %sum = add i64 %fa, %fb
  %slot = add i64 %i, {_OFF["free_node0"] // 8}
  %fp = getelementptr i64, ptr %ctx, i64 %slot
  store i64 %sum, ptr %fp
  br label %next
next:
  %i1 = add i64 %i, 1
  br label %loop
run:
  %fn = call ptr @word(ptr %d, i64 {_W_ENTRY})
  %r0 = call i64 %fn()
  %ok = icmp ult i64 %r0, %n
  br i1 %ok, label %node_r0, label %settle
node_r0:
  %out = call ptr @PyLong_FromLongLong(i64 %r0)
  ret ptr %out
settle:
  %sargs = alloca [2 x ptr]
  %a0 = call ptr @PyLong_FromUnsignedLongLong(i64 %r0)
  %a1 = call ptr @PyLong_FromLongLong(i64 %home)
  store ptr %a0, ptr %sargs
  %sa1 = getelementptr ptr, ptr %sargs, i64 1
  store ptr %a1, ptr %sa1
  %s = call ptr @word(ptr %d, i64 {_W_SETTLE})
  %sr = call ptr @PyObject_Vectorcall(ptr %s, ptr %sargs, i64 2, ptr null)
  call void @Py_DecRef(ptr %a0)
  call void @Py_DecRef(ptr %a1)
  ret ptr %sr
err:
  ret ptr null
}}
"""


@functools.cache
def _method() -> native.MethodDef | None:
    defs = native.link_entry_points(_IR, (("place", None, True),), "mmcore-placement")
    return None if defs is None else defs["place"]


class _Descriptor(int):
    """The descriptor's address, as the builtin's bound ``self``: it holds
    the descriptor and everything the descriptor addresses for as long as
    the builtin lives."""

    keep: tuple[Any, ...]


def _descriptor(hp: HookPoint, entry: int, node_zones: Sequence[tuple[Any, Any]],
                generic: Callable[..., int], settle: Callable[[int, int], int]) -> _Descriptor:
    names = ("home_node", "pid", "hint", "free_pages")
    flags = sum(bit for name, bit in _BITS.items() if hp.needs(name))
    if any(hp.needs(f"free_node{i}") for i in range(len(node_zones))):
        flags |= _FREE_BIT
    ctx = (ctypes.c_char * len(hp.ctx)).from_buffer(hp.ctx)  # pins ctx while kept
    words = [hp.words_address, ctypes.addressof(ctx), entry, len(node_zones), flags,
             id(generic), id(settle), *(id(n) for n in names), hp.generation]
    for normal, movable in node_zones:
        words += [id(normal), id(movable)]
    table = array("Q", words)
    d = _Descriptor(table.buffer_info()[0])
    d.keep = (table, ctx, hp, hp.engine, generic, settle, tuple(node_zones), names)
    return d


Call = Callable[[Any, Any, int], int]


def native_placement_call(hp: HookPoint, node_zones: Sequence[tuple[Any, Any]],
                          generic: Call, settle: Callable[[int, int], int]) -> Call | None:
    """The compiled ``call(proc, vma, order) -> node`` for the program
    attached to ``hp`` (see the module doc), or None when the program does
    not run on the JIT now or nothing can be compiled here."""
    if len(node_zones) > MAX_CTX_NODES:
        return None
    entry_of = getattr(hp.engine, "native_entry", None)
    entry = entry_of(hp.ctx) if callable(entry_of) else None
    method = _method() if entry is not None else None
    if method is None:
        return None
    return native.builtin(method, _descriptor(hp, entry, node_zones, generic, settle))  # type: ignore[return-value]
