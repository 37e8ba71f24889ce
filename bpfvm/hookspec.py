"""Hook records: the contract between a program and the host calling it.

A :class:`HookSpec` lays out the context struct a program receives in r1
(field name, offset, size, writable or not, and whether the field holds a
pointer the host fills in), states what r0 means on exit and its valid
range, and lists the helpers allowed there.  The verifier, both engines, the
``bpfvm hooks`` listing and the MM core all read the same records.

The generic program type ``mem`` is not a hook: r1 points at a buffer of
``ctx_size`` bytes that the program may read and write freely, r2 holds its
length (the convention of the conformance vectors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True, slots=True)
class CtxField:
    """One field of a hook's context struct.

    ``pointer`` names the memory object the field points at (e.g.
    ``"region"``); the host writes that object's address before each run
    and the verifier types a load of the field as a pointer to it.
    """

    name: str
    offset: int
    size: int
    writable: bool = False
    pointer: str | None = None
    doc: str = ""


@dataclass(frozen=True)
class HookSpec:
    name: str
    doc: str
    fields: tuple[CtxField, ...]
    ret_min: int  # valid r0 range, inclusive, as signed 64-bit values
    ret_max: int
    ret_doc: str
    helpers: tuple[str, ...] = ()
    returns_pointer: str | None = None  # r0 may be a pointer into this object (or 0)
    objects: dict[str, str] = field(default_factory=dict)  # object name -> its doc

    @cached_property
    def ctx_size(self) -> int:
        return max((f.offset + f.size for f in self.fields), default=0)

    def field_at(self, offset: int, size: int) -> CtxField | None:
        """The field exactly at (offset, size), or None."""
        return self._by_place.get((offset, size))

    @cached_property
    def _by_place(self) -> dict[tuple[int, int], CtxField]:
        out: dict[tuple[int, int], CtxField] = {}
        for f in self.fields:
            out.setdefault((f.offset, f.size), f)
        return out

    def field_named(self, name: str) -> CtxField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def layout(*fields: tuple) -> tuple[CtxField, ...]:
    """Lay out fields back to back, each aligned to its size.

    Each argument is ``(name, size[, writable[, pointer[, doc]]])``.
    """
    out, offset = [], 0
    for spec in fields:
        name, size, *rest = spec
        offset = (offset + size - 1) // size * size
        writable = bool(rest[0]) if rest else False
        pointer = rest[1] if len(rest) > 1 else None
        doc = rest[2] if len(rest) > 2 else ""
        out.append(CtxField(name, offset, size, writable, pointer, doc))
        offset += size
    return tuple(out)
