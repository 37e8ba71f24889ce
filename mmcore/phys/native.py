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
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from mmcore.constants import MAX_ORDER, NR_MT, NR_ORDERS, FrameState

# descriptor words: zone lists, then the frame arrays (their element types)
DESC_FIELDS = ("heads", "counts", "nr_free", "state", "order", "mt", "nxt", "prv", "owner",
               "index_lo", "index_hi")

_IR = """
; Buddy._del without the state write: block pfn off list i (order o)
define internal void @unlink(ptr %d, i64 %pfn, i64 %i, i64 %o) alwaysinline {{
entry:
  %n = call i64 @get32(ptr %d, i64 6, i64 %pfn)
  %p = call i64 @get32(ptr %d, i64 7, i64 %pfn)
  %hasp = icmp sge i64 %p, 0
  br i1 %hasp, label %linkp, label %linkhead
linkp:
  call void @set32(ptr %d, i64 6, i64 %p, i64 %n)
  br label %linkn
linkhead:
  %heads = call ptr @word(ptr %d, i64 0)
  %hp = getelementptr i64, ptr %heads, i64 %i
  store i64 %n, ptr %hp
  br label %linkn
linkn:
  %hasn = icmp sge i64 %n, 0
  br i1 %hasn, label %linkn2, label %counted
linkn2:
  call void @set32(ptr %d, i64 7, i64 %n, i64 %p)
  br label %counted
counted:
  call void @add64(ptr %d, i64 1, i64 %i, i64 -1)
  call void @add64(ptr %d, i64 2, i64 %o, i64 -1)
  ret void
}}

; Buddy._add: block pfn (order o) at the head of the list of mt
define internal void @push(ptr %d, i64 %pfn, i64 %o, i64 %mt) alwaysinline {{
entry:
  %oi = mul i64 %o, {nr_mt}
  %i = add i64 %oi, %mt
  %h = call i64 @at64(ptr %d, i64 0, i64 %i)
  call void @set8(ptr %d, i64 3, i64 %pfn, i64 {buddy})
  call void @set8(ptr %d, i64 4, i64 %pfn, i64 %o)
  call void @set8(ptr %d, i64 5, i64 %pfn, i64 %mt)
  call void @set32(ptr %d, i64 6, i64 %pfn, i64 %h)
  call void @set32(ptr %d, i64 7, i64 %pfn, i64 -1)
  %has = icmp sge i64 %h, 0
  br i1 %has, label %link, label %listed
link:
  call void @set32(ptr %d, i64 7, i64 %h, i64 %pfn)
  br label %listed
listed:
  %heads = call ptr @word(ptr %d, i64 0)
  %hp = getelementptr i64, ptr %heads, i64 %i
  store i64 %pfn, ptr %hp
  call void @add64(ptr %d, i64 1, i64 %i, i64 1)
  call void @add64(ptr %d, i64 2, i64 %o, i64 1)
  ret void
}}

define i64 @buddy_take(ptr %d, i64 %order, i64 %mt, i64 %owner, i64 %index) {{
entry:
  br label %search
search:
  %o = phi i64 [ %order, %entry ], [ %o1, %look ]
  %more = icmp slt i64 %o, {nr_orders}
  br i1 %more, label %look, label %none
look:
  %oi = mul i64 %o, {nr_mt}
  %i = add i64 %oi, %mt
  %pfn = call i64 @at64(ptr %d, i64 0, i64 %i)
  %found = icmp sge i64 %pfn, 0
  %o1 = add i64 %o, 1
  br i1 %found, label %take, label %search
none:
  ret i64 -1
take:
  call void @unlink(ptr %d, i64 %pfn, i64 %i, i64 %o)
  br label %expand
expand:
  %eo = phi i64 [ %o, %take ], [ %lo, %split ]
  %split_more = icmp sgt i64 %eo, %order
  br i1 %split_more, label %split, label %done
split:
  %lo = sub i64 %eo, 1
  %half = shl i64 1, %lo
  %b = add i64 %pfn, %half
  call void @push(ptr %d, i64 %b, i64 %lo, i64 %mt)
  br label %expand
done:
  call void @set8(ptr %d, i64 3, i64 %pfn, i64 {alloc})
  call void @set8(ptr %d, i64 4, i64 %pfn, i64 %order)
  call void @set8(ptr %d, i64 5, i64 %pfn, i64 %mt)
  call void @set32(ptr %d, i64 8, i64 %pfn, i64 %owner)
  call void @set32(ptr %d, i64 9, i64 %pfn, i64 %index)
  %ihi = call ptr @word(ptr %d, i64 10)
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
  %st = call ptr @word(ptr %d, i64 3)
  %bsp = getelementptr i8, ptr %st, i64 %buddy
  %bst = load i8, ptr %bsp
  %isfree = icmp eq i8 %bst, {buddy}
  br i1 %isfree, label %probe3, label %add
probe3:
  %ordr = call ptr @word(ptr %d, i64 4)
  %bop = getelementptr i8, ptr %ordr, i64 %buddy
  %bo8 = load i8, ptr %bop
  %bo = zext i8 %bo8 to i64
  %same = icmp eq i64 %bo, %o
  br i1 %same, label %unlink, label %add
unlink:
  %fmt = call ptr @word(ptr %d, i64 5)
  %bfp = getelementptr i8, ptr %fmt, i64 %buddy
  %bf8 = load i8, ptr %bfp
  %bf = zext i8 %bf8 to i64
  %oi = mul i64 %o, {nr_mt}
  %i = add i64 %oi, %bf
  call void @unlink(ptr %d, i64 %buddy, i64 %i, i64 %o)
  br label %unlinked
unlinked:
  store i8 {tail}, ptr %bsp
  %nbit = xor i64 %bit, -1
  %merged = and i64 %pfn, %nbit
  %o1 = add i64 %o, 1
  br label %merge
add:
  call void @push(ptr %d, i64 %pfn, i64 %o, i64 %mt)
  ret i64 %o
}}
"""


class ZoneArrays:
    """A zone's free-list heads, counts and per-order totals in int64
    arrays (the zone reads and writes them through memoryviews, as Python
    ints) and its descriptor for the compiled steps."""

    __slots__ = ("heads", "counts", "nr_free", "_keep", "desc")

    def __init__(self, frames: dict[str, np.ndarray]) -> None:
        lists = {"heads": np.full(NR_ORDERS * NR_MT, -1, dtype=np.int64),
                 "counts": np.zeros(NR_ORDERS * NR_MT, dtype=np.int64),
                 "nr_free": np.zeros(NR_ORDERS, dtype=np.int64)}
        self.heads, self.counts, self.nr_free = (memoryview(a) for a in lists.values())
        arrays = {**lists, **frames}
        words = np.array([arrays[f].ctypes.data for f in DESC_FIELDS], dtype=np.int64)
        self._keep = (lists, words)
        self.desc = int(words.ctypes.data)


class Compiled(NamedTuple):
    """The compiled steps, as builtins."""

    take: Callable[[int, int, int, int, int], int]  # (desc, order, mt, owner, index) -> pfn
    free: Callable[[int, int, int, int, int, int], int]  # (desc, pfn, order, mt, start, end)


ENTRY_POINTS = (("buddy_take", 5, False), ("buddy_free", 6, False))


@functools.cache
def compiled() -> Compiled | None:
    """The compiled steps, or None (no CPython C API, or ``BPFVM_NATIVE=0``)."""
    from bpfvm import native

    text = _IR.format(nr_orders=NR_ORDERS, nr_mt=NR_MT, max_order=MAX_ORDER,
                      buddy=int(FrameState.BUDDY), alloc=int(FrameState.ALLOC),
                      tail=int(FrameState.TAIL))
    defs = native.link_entry_points(text, ENTRY_POINTS, "mmcore-buddy")
    if defs is None:
        return None
    return Compiled(*(native.builtin(defs[name]) for name, _, _ in ENTRY_POINTS))  # type: ignore[arg-type]
