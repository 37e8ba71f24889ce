"""The buddy allocator's two hot list steps compiled to native code.

``take(desc, order, mt, owner, index)`` is the allocation step of
:meth:`~mmcore.phys.page_alloc.PageAllocator.alloc` in one zone
(``__rmqueue_smallest`` and ``prep_new_page``): the smallest block of
migratetype ``mt`` of order >= ``order`` leaves its list, its upper halves
go on the lists of the orders below (``expand``), and the head is marked
allocated to ``owner`` at ``index`` (which must lie in [0, 2**32)); it
returns the pfn, or -1 when ``mt`` has no such block (the caller's
fallback runs then, in Python).

``free(desc, pfn, order, mt, start, end)`` is ``__free_one_page``
(:meth:`~mmcore.phys.buddy.Buddy.free_one`): the block merges with its
free buddies inside the zone's [start, end) and goes on the list of
``mt``; it returns the order reached.

Neither touches the zone's ``free_pages`` (a Python attribute): it drops
by ``1 << order`` on a take and grows by ``1 << order`` on a free.
``desc`` is the address of a zone's descriptor (:class:`ZoneArrays`): the
addresses of its list heads and counts and of the frame arrays.  The
steps are the Python ones exactly (same lists, same order of links), so
either path leaves the same state; ``tests/mmcore/phys/test_native.py``
compares them.  Both are builtins (:mod:`bpfvm.native`); where there is
no CPython C API, :func:`compiled` gives None and the Python steps run.
Set ``BPFVM_NATIVE=0`` to force the Python steps.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from mmcore.constants import MAX_ORDER, NR_MT, NR_ORDERS, FrameState

# descriptor words: zone lists, then the frame arrays (their element types)
DESC_FIELDS = ("heads", "counts", "nr_free", "state", "order", "mt", "nxt", "prv", "owner",
               "index_lo", "index_hi")

_IR = """
define internal ptr @word(ptr %d, i64 %k) alwaysinline {{
  %p = getelementptr i64, ptr %d, i64 %k
  %w = load i64, ptr %p
  %q = inttoptr i64 %w to ptr
  ret ptr %q
}}

define i64 @buddy_take(ptr %d, i64 %order, i64 %mt, i64 %owner, i64 %index) {{
entry:
  %heads = call ptr @word(ptr %d, i64 0)
  %counts = call ptr @word(ptr %d, i64 1)
  %nrfree = call ptr @word(ptr %d, i64 2)
  %st = call ptr @word(ptr %d, i64 3)
  %ordr = call ptr @word(ptr %d, i64 4)
  %fmt = call ptr @word(ptr %d, i64 5)
  %nxt = call ptr @word(ptr %d, i64 6)
  %prv = call ptr @word(ptr %d, i64 7)
  %own = call ptr @word(ptr %d, i64 8)
  %ilo = call ptr @word(ptr %d, i64 9)
  %ihi = call ptr @word(ptr %d, i64 10)
  br label %search

search:
  %o = phi i64 [ %order, %entry ], [ %o1, %next ]
  %more = icmp slt i64 %o, {nr_orders}
  br i1 %more, label %look, label %none

look:
  %oi = mul i64 %o, {nr_mt}
  %i = add i64 %oi, %mt
  %hp = getelementptr i64, ptr %heads, i64 %i
  %pfn = load i64, ptr %hp
  %found = icmp sge i64 %pfn, 0
  %o1 = add i64 %o, 1
  br i1 %found, label %unlink, label %next

next:
  br label %search

none:
  ret i64 -1

unlink:
  %np = getelementptr i32, ptr %nxt, i64 %pfn
  %n32 = load i32, ptr %np
  %pp = getelementptr i32, ptr %prv, i64 %pfn
  %p32 = load i32, ptr %pp
  %n = sext i32 %n32 to i64
  %p = sext i32 %p32 to i64
  %hasp = icmp sge i64 %p, 0
  br i1 %hasp, label %linkp, label %linkhead

linkp:
  %pn = getelementptr i32, ptr %nxt, i64 %p
  store i32 %n32, ptr %pn
  br label %linkn

linkhead:
  store i64 %n, ptr %hp
  br label %linkn

linkn:
  %hasn = icmp sge i64 %n, 0
  br i1 %hasn, label %linkn2, label %counted

linkn2:
  %npv = getelementptr i32, ptr %prv, i64 %n
  store i32 %p32, ptr %npv
  br label %counted

counted:
  %cp = getelementptr i64, ptr %counts, i64 %i
  %c = load i64, ptr %cp
  %c1 = sub i64 %c, 1
  store i64 %c1, ptr %cp
  %fp = getelementptr i64, ptr %nrfree, i64 %o
  %f = load i64, ptr %fp
  %f1 = sub i64 %f, 1
  store i64 %f1, ptr %fp
  %mt8 = trunc i64 %mt to i8
  br label %expand

expand:
  %eo = phi i64 [ %o, %counted ], [ %lo, %splithead ]
  %split_more = icmp sgt i64 %eo, %order
  br i1 %split_more, label %split, label %done

split:
  %lo = sub i64 %eo, 1
  %half = shl i64 1, %lo
  %b = add i64 %pfn, %half
  %b32 = trunc i64 %b to i32
  %li = mul i64 %lo, {nr_mt}
  %bi = add i64 %li, %mt
  %bhp = getelementptr i64, ptr %heads, i64 %bi
  %h = load i64, ptr %bhp
  %h32 = trunc i64 %h to i32
  %stb = getelementptr i8, ptr %st, i64 %b
  store i8 {buddy}, ptr %stb
  %orb = getelementptr i8, ptr %ordr, i64 %b
  %lo8 = trunc i64 %lo to i8
  store i8 %lo8, ptr %orb
  %fmb = getelementptr i8, ptr %fmt, i64 %b
  store i8 %mt8, ptr %fmb
  %nxb = getelementptr i32, ptr %nxt, i64 %b
  store i32 %h32, ptr %nxb
  %pvb = getelementptr i32, ptr %prv, i64 %b
  store i32 -1, ptr %pvb
  %hash = icmp sge i64 %h, 0
  br i1 %hash, label %splitprv, label %splithead

splitprv:
  %hpv = getelementptr i32, ptr %prv, i64 %h
  store i32 %b32, ptr %hpv
  br label %splithead

splithead:
  store i64 %b, ptr %bhp
  %bcp = getelementptr i64, ptr %counts, i64 %bi
  %bc = load i64, ptr %bcp
  %bc1 = add i64 %bc, 1
  store i64 %bc1, ptr %bcp
  %bfp = getelementptr i64, ptr %nrfree, i64 %lo
  %bf = load i64, ptr %bfp
  %bf1 = add i64 %bf, 1
  store i64 %bf1, ptr %bfp
  br label %expand

done:
  %sth = getelementptr i8, ptr %st, i64 %pfn
  store i8 {alloc}, ptr %sth
  %orh = getelementptr i8, ptr %ordr, i64 %pfn
  %order8 = trunc i64 %order to i8
  store i8 %order8, ptr %orh
  %fmh = getelementptr i8, ptr %fmt, i64 %pfn
  store i8 %mt8, ptr %fmh
  %owh = getelementptr i32, ptr %own, i64 %pfn
  %owner32 = trunc i64 %owner to i32
  store i32 %owner32, ptr %owh
  %ilh = getelementptr i32, ptr %ilo, i64 %pfn
  %index32 = trunc i64 %index to i32
  store i32 %index32, ptr %ilh
  %ihh = getelementptr i8, ptr %ihi, i64 %pfn
  %ihv = load i8, ptr %ihh
  %ihset = icmp ne i8 %ihv, 0
  br i1 %ihset, label %clearhi, label %out

clearhi:
  store i8 0, ptr %ihh
  br label %out

out:
  ret i64 %pfn
}}

define i64 @buddy_free(ptr %d, i64 %pfn0, i64 %order0, i64 %mt, i64 %start, i64 %end) {{
entry:
  %heads = call ptr @word(ptr %d, i64 0)
  %counts = call ptr @word(ptr %d, i64 1)
  %nrfree = call ptr @word(ptr %d, i64 2)
  %st = call ptr @word(ptr %d, i64 3)
  %ordr = call ptr @word(ptr %d, i64 4)
  %fmt = call ptr @word(ptr %d, i64 5)
  %nxt = call ptr @word(ptr %d, i64 6)
  %prv = call ptr @word(ptr %d, i64 7)
  br label %merge

merge:
  %pfn = phi i64 [ %pfn0, %entry ], [ %merged, %unlinked ]
  %o = phi i64 [ %order0, %entry ], [ %o1, %unlinked ]
  %top = icmp sge i64 %o, {max_order}
  br i1 %top, label %add, label %probe

probe:
  %bit = shl i64 1, %o
  %buddy = xor i64 %pfn, %bit
  %below = icmp slt i64 %buddy, %start
  %above = icmp sge i64 %buddy, %end
  %out = or i1 %below, %above
  br i1 %out, label %add, label %probe2

probe2:
  %bsp = getelementptr i8, ptr %st, i64 %buddy
  %bst = load i8, ptr %bsp
  %isfree = icmp eq i8 %bst, {buddy}
  br i1 %isfree, label %probe3, label %add

probe3:
  %bop = getelementptr i8, ptr %ordr, i64 %buddy
  %bo8 = load i8, ptr %bop
  %bo = zext i8 %bo8 to i64
  %same = icmp eq i64 %bo, %o
  br i1 %same, label %unlink, label %add

unlink:
  %bfp = getelementptr i8, ptr %fmt, i64 %buddy
  %bf8 = load i8, ptr %bfp
  %bf = zext i8 %bf8 to i64
  %oi = mul i64 %o, {nr_mt}
  %i = add i64 %oi, %bf
  %np = getelementptr i32, ptr %nxt, i64 %buddy
  %n32 = load i32, ptr %np
  %pp = getelementptr i32, ptr %prv, i64 %buddy
  %p32 = load i32, ptr %pp
  %n = sext i32 %n32 to i64
  %p = sext i32 %p32 to i64
  %hasp = icmp sge i64 %p, 0
  br i1 %hasp, label %linkp, label %linkhead

linkp:
  %pn = getelementptr i32, ptr %nxt, i64 %p
  store i32 %n32, ptr %pn
  br label %linkn

linkhead:
  %hp = getelementptr i64, ptr %heads, i64 %i
  store i64 %n, ptr %hp
  br label %linkn

linkn:
  %hasn = icmp sge i64 %n, 0
  br i1 %hasn, label %linkn2, label %unlinked

linkn2:
  %npv = getelementptr i32, ptr %prv, i64 %n
  store i32 %p32, ptr %npv
  br label %unlinked

unlinked:
  store i8 {tail}, ptr %bsp
  %cp = getelementptr i64, ptr %counts, i64 %i
  %c = load i64, ptr %cp
  %c1 = sub i64 %c, 1
  store i64 %c1, ptr %cp
  %fp = getelementptr i64, ptr %nrfree, i64 %o
  %f = load i64, ptr %fp
  %f1 = sub i64 %f, 1
  store i64 %f1, ptr %fp
  %nbit = xor i64 %bit, -1
  %merged = and i64 %pfn, %nbit
  %o1 = add i64 %o, 1
  br label %merge

add:
  %ai0 = mul i64 %o, {nr_mt}
  %ai = add i64 %ai0, %mt
  %ahp = getelementptr i64, ptr %heads, i64 %ai
  %h = load i64, ptr %ahp
  %h32 = trunc i64 %h to i32
  %pfn32 = trunc i64 %pfn to i32
  %sth = getelementptr i8, ptr %st, i64 %pfn
  store i8 {buddy}, ptr %sth
  %orh = getelementptr i8, ptr %ordr, i64 %pfn
  %o8 = trunc i64 %o to i8
  store i8 %o8, ptr %orh
  %fmh = getelementptr i8, ptr %fmt, i64 %pfn
  %mt8 = trunc i64 %mt to i8
  store i8 %mt8, ptr %fmh
  %nxh = getelementptr i32, ptr %nxt, i64 %pfn
  store i32 %h32, ptr %nxh
  %pvh = getelementptr i32, ptr %prv, i64 %pfn
  store i32 -1, ptr %pvh
  %hash = icmp sge i64 %h, 0
  br i1 %hash, label %addprv, label %addhead

addprv:
  %hpv = getelementptr i32, ptr %prv, i64 %h
  store i32 %pfn32, ptr %hpv
  br label %addhead

addhead:
  store i64 %pfn, ptr %ahp
  %acp = getelementptr i64, ptr %counts, i64 %ai
  %ac = load i64, ptr %acp
  %ac1 = add i64 %ac, 1
  store i64 %ac1, ptr %acp
  %afp = getelementptr i64, ptr %nrfree, i64 %o
  %af = load i64, ptr %afp
  %af1 = add i64 %af, 1
  store i64 %af1, ptr %afp
  ret i64 %o
}}
"""


class ZoneArrays:
    """A zone's free-list heads, counts and per-order totals in int64
    arrays (the zone reads and writes them through memoryviews, as Python
    ints) and its descriptor for the compiled steps."""

    __slots__ = ("heads", "counts", "nr_free", "_keep", "desc")

    def __init__(self, frames: dict[str, np.ndarray] | None) -> None:
        heads = np.full(NR_ORDERS * NR_MT, -1, dtype=np.int64)
        counts = np.zeros(NR_ORDERS * NR_MT, dtype=np.int64)
        nr_free = np.zeros(NR_ORDERS, dtype=np.int64)
        self._keep = (heads, counts, nr_free)
        self.heads, self.counts, self.nr_free = (memoryview(a) for a in self._keep)
        self.desc = 0
        if frames is not None:
            arrays = {"heads": heads, "counts": counts, "nr_free": nr_free, **frames}
            words = np.array([arrays[f].ctypes.data for f in DESC_FIELDS], dtype=np.int64)
            self._keep += (words,)
            self.desc = int(words.ctypes.data)


class Compiled(NamedTuple):
    """The compiled steps, as builtins."""

    take: Callable[[int, int, int, int, int], int]  # (desc, order, mt, owner, index) -> pfn
    free: Callable[[int, int, int, int, int, int], int]  # (desc, pfn, order, mt, start, end)


ENTRY_POINTS = (("buddy_take", 5, False), ("buddy_free", 6, False))


@functools.cache
def compiled() -> Compiled | None:
    """The compiled steps, or None (no CPython C API, or ``BPFVM_NATIVE=0``)."""
    if os.environ.get("BPFVM_NATIVE", "1") == "0":
        return None
    from bpfvm import native

    text = _IR.format(nr_orders=NR_ORDERS, nr_mt=NR_MT, max_order=MAX_ORDER,
                      buddy=int(FrameState.BUDDY), alloc=int(FrameState.ALLOC),
                      tail=int(FrameState.TAIL))
    defs = native.link_entry_points(text, ENTRY_POINTS, "mmcore-buddy")
    if defs is None:
        return None
    return Compiled(*(native.builtin(defs[name]) for name, _, _ in ENTRY_POINTS))  # type: ignore[arg-type]
