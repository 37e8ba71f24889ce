"""The type domain: what a register (or a spilled stack slot) may hold.

A :class:`Val` is uninitialised, a scalar, a pointer into a memory object
(context, stack frame, map value, region, helper memory, or the generic
program's buffer) with a :class:`~verifier.domains.interval.Scalar` offset, a map
handle, or ``TOP`` (different types on different paths).  A pointer may be
"or null" (``null``) with an ``id`` shared by its copies, so that a null
check on one refines them all.  Join, leq and widen follow the lattice
``UNINIT > TOP > {scalars, pointers of one object, handles}``.  This module
knows nothing of eBPF instructions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

from verifier.domains.interval import Scalar, Thresholds, describe


class K(IntEnum):
    UNINIT = 0  # never written on some path
    TOP = 1  # initialised, but of different types on different paths
    SCALAR = 2
    PTR = 3
    MAP = 4  # map handle


# The kinds as module constants: reading a member off an Enum class goes
# through a descriptor, and kinds are compared at every step of the analysis.
K_UNINIT, K_TOP, K_SCALAR, K_PTR, K_MAP = K.UNINIT, K.TOP, K.SCALAR, K.PTR, K.MAP

DIRECT = -1  # the entry of the map value a lddw addresses (an array's first value)


@dataclass(frozen=True, slots=True)
class Obj:
    """A memory object: ``kind`` is ctx, buf, stack, map_value, region or
    mem; ``ref`` tells objects of one kind apart (frame depth, map index,
    object name); ``size`` in bytes.  A map has many values: ``entry``
    tells which one a ``map_value`` pointer points into -- the pc + 1 of
    the lookup that returned it (on its latest run), :data:`DIRECT` for the
    value a ``lddw`` addresses, 0 when not known.  Every other kind of
    object is one object at run time."""

    kind: str
    ref: int | str
    size: int
    name: str = ""
    entry: int = 0

    def is_one_object(self, o: Obj) -> bool:
        """``self`` and ``o`` are provably the same object at run time."""
        return self == o and (self.kind != "map_value" or self.entry != 0)

    def same_storage(self, o: Obj) -> bool:
        """The same object, or values of the same map."""
        return self.kind == o.kind and self.ref == o.ref

    def any_entry(self) -> Obj:
        """This object with its map value not known."""
        return self if self.entry == 0 else replace(self, entry=0)

    def describe(self) -> str:
        if self.kind == "stack":
            return "fp" if self.ref == 0 else f"fp{self.ref}"
        if self.kind == "map_value":
            return f"map_value({self.name})" if self.name else "map_value"
        if self.kind == "region":
            return f"region({self.ref})"
        return self.kind


class Val:
    """Immutable (never assigned after construction); written out rather than
    a frozen dataclass because values are made and compared at every step."""

    __slots__ = ("kind", "num", "obj", "null", "id")

    def __init__(self, kind: K, num: Scalar | None = None, obj: Obj | None = None,
                 null: bool = False, id: int = 0) -> None:
        self.kind = kind
        self.num = num  # scalar value, or pointer offset
        self.obj = obj
        self.null = null
        self.id = id

    def __eq__(self, o: object) -> bool:
        if self is o:
            return True
        if o.__class__ is not Val:
            return NotImplemented
        return (self.kind is o.kind and self.id == o.id  # type: ignore[attr-defined]
                and self.null == o.null and self.num == o.num  # type: ignore[attr-defined]
                and self.obj == o.obj)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.kind, self.num, self.obj, self.null, self.id))

    def __repr__(self) -> str:
        return (f"Val(kind={self.kind!r}, num={self.num!r}, obj={self.obj!r}, "
                f"null={self.null!r}, id={self.id!r})")

    # -- queries -----------------------------------------------------------
    @property
    def is_scalar(self) -> bool:
        return self.kind is K_SCALAR

    @property
    def is_ptr(self) -> bool:
        return self.kind is K_PTR

    def type_name(self) -> str:
        if self.kind is K_PTR:
            assert self.obj is not None
            base = {"ctx": "ctx", "buf": "mem", "stack": "stack", "map_value": "map_value",
                    "region": "region", "mem": "mem"}[self.obj.kind]
            return f"{base}_or_null" if self.null else f"ptr_to_{base}"
        return {K_UNINIT: "uninit", K_TOP: "mixed", K_SCALAR: "scalar",
                K_MAP: "map_ptr"}[self.kind]

    def describe(self) -> str:
        """Kernel-log-like rendering: ``scalar(umax=63,var_off=...)``."""
        if self.kind is K_SCALAR:
            assert self.num is not None
            return describe(self.num) if self.num.is_const() else f"scalar({describe(self.num)})"
        if self.kind is K_MAP:
            assert self.obj is not None
            return f"map_ptr({self.obj.name or self.obj.ref})"
        if self.kind is K_PTR:
            assert self.obj is not None and self.num is not None
            off = describe(self.num)
            parts = [f"off={off}" if self.num.is_const() else off]
            if self.obj.kind == "map_value":
                parts.insert(0, f"map={self.obj.name or self.obj.ref}")
            if self.obj.kind != "stack":
                parts.append(f"size={self.obj.size}")
            if self.id and self.null:
                parts.append(f"id={self.id}")
            return f"{self.type_name()}({','.join(parts)})"
        return self.type_name()

    # -- lattice -----------------------------------------------------------
    def join(self, o: Val) -> Val:
        if self is o or self == o:
            return self
        if self.kind is K_UNINIT or o.kind is K_UNINIT:
            return UNINIT
        if self.kind is K_SCALAR and o.kind is K_SCALAR:
            assert self.num is not None and o.num is not None
            return Val(K_SCALAR, self.num.join(o.num))
        if self.kind is K_PTR and o.kind is K_PTR and self.obj == o.obj:
            assert self.num is not None and o.num is not None
            return Val(K_PTR, self.num.join(o.num), self.obj, self.null or o.null,
                       _join_ids(self, o))
        if self.kind is K_PTR and o.kind is K_PTR and self.obj.same_storage(o.obj):
            assert self.num is not None and o.num is not None  # values of one map: which
            return Val(K_PTR, self.num.join(o.num), self.obj.any_entry(),  # is not known
                       self.null or o.null, _join_ids(self, o))
        # a pointer joined with 0 is not a copy of the lookup result on every path:
        # it keeps only the one-way link (State.join gives the id back where that
        # is consistent)
        if self.kind is K_PTR and _is_zero(o):
            return Val(K_PTR, self.num, self.obj, True, _one_way(self))
        if o.kind is K_PTR and _is_zero(self):
            return Val(K_PTR, o.num, o.obj, True, _one_way(o))
        return TOP

    def widen(self, o: Val, th: Thresholds) -> Val:
        j = self.join(o)
        if j.kind in (K_SCALAR, K_PTR) and self.kind is j.kind and self.obj == j.obj:
            assert self.num is not None and j.num is not None
            num = self.num.widen(j.num, th)
            if num is not j.num:
                return Val(j.kind, num, j.obj, j.null, j.id)
        return j

    def leq(self, o: Val) -> bool:
        return self.join(o) == o


def _one_way(v: Val) -> int:
    """The id of a maybe-null pointer joined with 0: ``-X`` when ``v`` is
    linked to lookup result X (or already one-way linked to it).  A value
    with ``-X`` is not equal to X's values, but when it is not null it came
    from the path where it was: X's values are not null either."""
    if not v.null or not v.id:
        return 0
    return v.id if v.id < 0 else -v.id


def _join_ids(a: Val, b: Val) -> int:
    """The id of two joined pointers of one object: shared when both carry
    it; one-way (``-X``) when one is linked to X and the other one-way."""
    if a.id == b.id:
        return a.id
    if a.null and b.null and a.id and abs(a.id) == abs(b.id):
        return -abs(a.id)
    return 0


def _is_zero(v: Val) -> bool:
    return v.kind is K_SCALAR and v.num is not None and v.num.is_const() and v.num.value == 0


UNINIT = Val(K_UNINIT)
TOP = Val(K_TOP)
UNKNOWN = Val(K_SCALAR, Scalar.unknown())


def scalar(num: Scalar) -> Val:
    v = _new(Val)  # Val(K_SCALAR, num) without the __init__ call: made at most steps
    v.kind = K_SCALAR
    v.num = num
    v.obj = None
    v.null = False
    v.id = 0
    return v


_new = object.__new__


def const(value: int) -> Val:
    return scalar(Scalar.const(value))


def pointer(obj: Obj, off: Scalar | int = 0, null: bool = False, id: int = 0) -> Val:
    return Val(K_PTR, off if isinstance(off, Scalar) else Scalar.const(off), obj, null, id)
