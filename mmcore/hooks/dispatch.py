"""Hook dispatch: propose, validate, fall back.

Each hook point has a built-in policy (a Python function) and optionally an
attached engine (:class:`bpfvm.engine.Engine`; anything with ``run(ctx) -> int``
will do).  With no
engine the core calls the built-in directly.  With one, the core packs the
context bytes per the hook's layout, runs the engine, reads r0 as a signed
64-bit value and checks it against the hook's range and the caller's
contract check; an out-of-range value or an engine that raises makes the
core use the built-in policy and count a fallback.  Engines never see or
touch MM state other than the context bytes they are handed (and what the
MM helpers let them read).  An engine offering ``bind(buf)`` (both engines do) is
bound to the hook's one context buffer at attach time, so a call is a single
native call with no argument conversion.

Hook points are named after their records in :mod:`mmcore.hooks.specs`; the names
with an ``mm_`` prefix (``mm_placement``) are accepted everywhere a name is
looked up, for scenario files and callers written against them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bpfvm.engine import FAULT, Engine
from bpfvm.hookspec import HookSpec
from bpfvm.isa.bits import s64

_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


def ctx_struct(spec: HookSpec) -> struct.Struct:
    """A little-endian struct matching the hook's context layout."""
    fmt, pos = "<", 0
    for f in sorted(spec.fields, key=lambda f: f.offset):
        fmt += "x" * (f.offset - pos) + _CODES[f.size]
        pos = f.offset + f.size
    return struct.Struct(fmt)


class AliasDict(dict):
    """A dict by hook name that also answers ``mm_``-prefixed names."""

    def __missing__(self, key: str) -> Any:
        if isinstance(key, str) and key.startswith("mm_") and key[3:] in self:
            return self[key[3:]]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or (
            isinstance(key, str) and key.startswith("mm_") and super().__contains__(key[3:]))


@dataclass
class HookPoint:
    spec: HookSpec
    default: Callable[..., int]
    engine: Engine | None = None
    fast: Callable[[], int] | None = None  # the engine bound to ``ctx`` (JIT fast path)
    packer: struct.Struct = field(init=False)
    masks: tuple[int, ...] = field(init=False)
    ctx: bytearray = field(init=False, repr=False)
    calls: int = 0
    fallbacks: int = 0
    errors: int = 0
    last_error: str = ""

    def __post_init__(self) -> None:
        self.packer = ctx_struct(self.spec)
        fields = sorted(self.spec.fields, key=lambda f: f.offset)
        self.masks = tuple((1 << (8 * f.size)) - 1 for f in fields)
        self.ctx = bytearray(self.packer.size)

    def pack(self, values: Sequence[int]) -> bytearray:
        """The hook's context buffer filled with ``values`` (each masked to its
        field's width).  One buffer per hook point, reused by every call: an
        engine sees the same object each time (cheaper to hand over), and
        every field is rewritten before each call."""
        ctx = self.ctx
        try:
            self.packer.pack_into(ctx, 0, *values)
        except struct.error:  # a value wider than its field: keep its low bits
            self.packer.pack_into(ctx, 0, *(v & m for v, m in zip(values, self.masks,
                                                                    strict=True)))
        return ctx


class HookTable:
    """The hook points of one MM instance, by name."""

    def __init__(self, points: Sequence[tuple[HookSpec, Callable[..., int]]]) -> None:
        self.points: AliasDict = AliasDict(
            (spec.name, HookPoint(spec, default)) for spec, default in points)

    def resolve(self, name: str) -> str:
        """The point's own name for ``name`` (KeyError when there is none)."""
        return self.points[name].spec.name

    def attach(self, name: str, engine: Engine) -> None:
        """Attach ``engine``; one that can ``bind`` a buffer (the JIT) is bound
        to the point's context buffer once, so a call costs one native call."""
        hp = self.points[name]
        hp.engine = engine
        bind = getattr(engine, "bind", None)
        hp.fast = bind(hp.ctx) if callable(bind) else None

    def detach(self, name: str) -> None:
        hp = self.points[name]
        hp.engine = None
        hp.fast = None

    def attached(self, name: str) -> bool:
        return self.points[name].engine is not None

    def call(
        self,
        name: str,
        values: Sequence[int],
        valid: Callable[[int], bool] | None = None,
        default_args: Sequence[Any] | None = None,
    ) -> int:
        """Decide at hook ``name``; ``values`` fill the context fields in
        layout order, ``default_args`` (else ``values``) go to the built-in."""
        return self.decide(name, values, valid, default_args)[0]

    def decide(
        self,
        name: str,
        values: Sequence[int],
        valid: Callable[[int], bool] | None = None,
        default_args: Sequence[Any] | None = None,
    ) -> tuple[int, bytearray | None]:
        """As :meth:`call`, also returning the context after the program ran
        (its writable fields hold the program's outputs), or None when the
        built-in policy decided."""
        hp = self.points[name]
        hp.calls += 1
        args = values if default_args is None else default_args
        if hp.engine is None:
            return hp.default(*args), None
        ctx = hp.pack(values)
        try:
            if hp.fast is not None:
                r0 = hp.fast()
                if r0 == FAULT:  # or a genuine -1: check() raises only after a fault
                    hp.engine.check()  # type: ignore[attr-defined]
                r0 = s64(r0)
            else:
                r0 = s64(int(hp.engine.run(ctx)))
        except Exception as exc:  # an engine fault must never reach MM state
            hp.errors += 1
            hp.fallbacks += 1
            hp.last_error = f"{type(exc).__name__}: {exc}"
            return hp.default(*args), None
        if not hp.spec.ret_min <= r0 <= hp.spec.ret_max or (valid is not None and not valid(r0)):
            hp.fallbacks += 1
            return hp.default(*args), None
        return r0, ctx

    def stats(self) -> dict[str, dict[str, Any]]:
        return AliasDict({
            n: {
                "attached": hp.engine is not None,
                "calls": hp.calls,
                "fallbacks": hp.fallbacks,
                "errors": hp.errors,
                "last_error": hp.last_error,
            }
            for n, hp in self.points.items()
        })
