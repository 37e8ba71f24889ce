"""In-place context writers of the reclaim, zone_resize and lifetime hooks.

As the placement and huge-page hooks do in the MM core, each writer holds
views of its hook's one context buffer and the index of every field in
the view of its width (precomputed once), writes the fields of a call
straight into the buffer, runs the bound engine and checks r0 against the
hook's precomputed bounds with one comparison; a fault, an out-of-range
value or a negative result takes :meth:`HookPoint.settle`.  Every field is
written on every call (the buffer may have been packed by
:meth:`HookTable.call`, and a program may have written its output fields).
With no engine attached each writer calls the built-in policy, counting
the call as :meth:`HookTable.call` does.  Values keep their low bits, as
:meth:`HookPoint.pack` does.
"""

from __future__ import annotations

from bpfvm.hookspec import HookSpec
from mmcore.hooks.dispatch import HookPoint, HookTable, slot
from mmcore.hooks.specs import LIFETIME, RECLAIM, ZONE_RESIZE

_U32, _U64 = (1 << 32) - 1, (1 << 64) - 1

(_RC_NR, _RC_AA, _RC_IA, _RC_AF, _RC_IF, _RC_SWAP, _RC_PROCS, _RC_LARGEST, _RC_TARGET,
 _RC_NID, _RC_MOVABLE, _RC_FREE) = (slot(RECLAIM, f.name) for f in RECLAIM.fields)
_ZR = tuple(slot(ZONE_RESIZE, f.name) for f in ZONE_RESIZE.fields)
_LT_SOURCE, _LT_ORDER, _LT_SITE, _LT_PID = (slot(LIFETIME, f.name) for f in LIFETIME.fields)


def valid_as_is(spec: HookSpec) -> int:
    """The largest unsigned r0 the hook accepts as it is (every value from 0
    up to it is in the hook's range); -1 when 0 is out of range."""
    return spec.ret_max if spec.ret_min <= 0 <= spec.ret_max < 1 << 63 else -1


def _run(hp: HookPoint, hi: int) -> int | None:
    """r0 of the bound engine when within the hook's range, else None
    (counted): 0..``hi`` is checked with one comparison, anything else (a
    fault, a negative or out-of-range value) by :meth:`HookPoint.settle`."""
    try:
        r0 = hp.fast()  # type: ignore[misc]
    except Exception as exc:  # an engine fault must never reach MM state
        return hp.failed(exc)
    if r0 <= hi:
        return r0
    return hp.settle(r0)


class ReclaimContext:
    """The ``reclaim`` hook: a pass's anon/file split and target process."""

    def __init__(self, hooks: HookTable) -> None:
        self.hp = hp = hooks.points[RECLAIM.name]
        self.hi = valid_as_is(RECLAIM)
        _, _, self.w32, self.w64 = hp.views()

    def decide(self, nr: int, anon_active: int, anon_inactive: int, file_active: int,
               file_inactive: int, swappiness: int, nr_procs: int, largest: int, nid: int,
               for_movable: int, free: int) -> tuple[int, int] | None:
        """(percent from anon, target pid written by the program), or None
        when the built-in policy decides (a fallback, already counted).
        The caller checks that an engine is attached."""
        self.hp.words[0] += 1  # hp.calls
        w32, w64 = self.w32, self.w64
        w64[_RC_NR] = nr & _U64
        w64[_RC_AA] = anon_active & _U64
        w64[_RC_IA] = anon_inactive & _U64
        w64[_RC_AF] = file_active & _U64
        w64[_RC_IF] = file_inactive & _U64
        w32[_RC_SWAP] = swappiness & _U32
        w32[_RC_PROCS] = nr_procs & _U32
        w32[_RC_LARGEST] = largest & _U32
        w32[_RC_TARGET] = 0
        w32[_RC_NID] = nid & _U32
        w32[_RC_MOVABLE] = for_movable & _U32
        w64[_RC_FREE] = free & _U64
        r0 = _run(self.hp, self.hi)
        if r0 is None:
            return None
        return r0, w32[_RC_TARGET]


class ZoneResizeContext:
    """The ``zone_resize`` hook: pageblocks to move a node's boundary by."""

    def __init__(self, hooks: HookTable) -> None:
        self.hp = hp = hooks.points[ZONE_RESIZE.name]
        self.hi = valid_as_is(ZONE_RESIZE)
        self.w64 = hp.views()[3]

    def decide(self, *values: int) -> int:
        """The program's delta, else the built-in's; ``values`` are the
        eight u64 fields in layout order."""
        hp = self.hp
        hp.words[0] += 1  # hp.calls
        if hp.engine is None:
            return hp.default(*values)
        w64 = self.w64
        for i, v in zip(_ZR, values, strict=True):
            w64[i] = v & _U64
        r0 = _run(hp, self.hi)
        return hp.default(*values) if r0 is None else r0


class LifetimeContext:
    """The ``lifetime`` hook: a kernel allocation's lifetime class."""

    def __init__(self, hooks: HookTable) -> None:
        self.hp = hp = hooks.points[LIFETIME.name]
        self.hi = valid_as_is(LIFETIME)
        self.w32 = hp.views()[2]

    def decide(self, source: int, order: int, site: int) -> int:
        """0 (the source's own migratetype), 1 (short-lived) or 2 (long-lived)."""
        hp = self.hp
        hp.words[0] += 1  # hp.calls
        if hp.engine is None:
            return hp.default(source, order, site, 0)
        w32 = self.w32
        w32[_LT_SOURCE] = source & _U32
        w32[_LT_ORDER] = order & _U32
        w32[_LT_SITE] = site & _U32
        w32[_LT_PID] = 0
        r0 = _run(hp, self.hi)
        return hp.default(source, order, site, 0) if r0 is None else r0
