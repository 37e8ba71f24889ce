"""Hook dispatch: propose, validate, fall back.

Each hook point has a built-in policy (a Python function) and optionally an
attached engine (:class:`bpfvm.engine.Engine`; anything with ``run(ctx) -> int``
will do).  With no engine the core calls the built-in directly.  With one,
the core writes the context fields into the hook's one context buffer, runs
the engine, and checks r0 against the hook's range and the caller's
contract check; an out-of-range value or an engine that raises makes the
core use the built-in policy and count a fallback.  Engines never see or
touch MM state other than the context bytes they are handed (and what the
MM helpers let them read).

The hot path (:meth:`HookPoint.propose`) costs one engine call and one
comparison: the context buffer is allocated once per hook point and bound
to the engine at attach time (pinned, for the JIT), the MM core writes
each field in place through a view of the buffer of the field's width
(:meth:`HookPoint.views`, indexes from :func:`slot`) -- no struct packing
of a value tuple per call -- and r0 comes back as an unsigned 64-bit
integer that is checked against precomputed bounds without a signed
conversion whenever the hook's range is non-negative.  A fault, a value
outside those bounds and a hook with a negative range take the slow path
(:meth:`HookPoint.settle`).  :meth:`HookTable.call` / :meth:`HookTable.decide`
take the fields as a tuple for hooks that are rarely called.  A caller
writing fields in place may skip those the attached program never loads
(:meth:`HookPoint.needs`, from the verifier's account of the program's
context loads); :attr:`HookPoint.stale` tells it when to look again.

Hook points are named after their records in :mod:`mmcore.hooks.specs`; the names
with an ``mm_`` prefix (``mm_placement``) are accepted everywhere a name is
looked up, for scenario files and callers written against them.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bpfvm.engine import FAULT, Engine, Tiered
from bpfvm.hookspec import HookSpec
from bpfvm.isa.bits import M64, s64

_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


def ctx_struct(spec: HookSpec) -> struct.Struct:
    """A little-endian struct matching the hook's context layout."""
    fmt, pos = "<", 0
    for f in sorted(spec.fields, key=lambda f: f.offset):
        fmt += "x" * (f.offset - pos) + _CODES[f.size]
        pos = f.offset + f.size
    return struct.Struct(fmt)


def slot(spec: HookSpec, name: str) -> int:
    """The index of field ``name`` in the view of its width (see
    :meth:`HookPoint.views`): its offset over its size (fields are aligned)."""
    f = spec.field_named(name)
    assert f.offset % f.size == 0, f"{spec.name}.{name} is not aligned"
    return f.offset // f.size


def _python_bound(engine: Any, ctx: bytearray) -> Callable[[], int]:
    """A zero-argument call of an engine that cannot bind a buffer (any object
    with ``run(ctx)``): r0 as an unsigned 64-bit value, exceptions propagate."""
    run = engine.run
    return lambda: int(run(ctx)) & M64


def _field_names(spec: HookSpec, reads: Any) -> frozenset[str] | None:
    """The names of the fields at the (offset, size) pairs ``reads``; None
    (every field) when ``reads`` is None or names a place no field is at."""
    if reads is None:
        return None
    names = set()
    for offset, size in reads:
        f = spec.field_at(offset, size)
        if f is None:
            return None
        names.add(f.name)
    return frozenset(names)


class AliasDict(dict):
    """A dict by hook name that also answers ``mm_``-prefixed names."""

    def __missing__(self, key: str) -> Any:
        if isinstance(key, str) and key.startswith("mm_") and key[3:] in self:
            return self[key[3:]]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or (
            isinstance(key, str) and key.startswith("mm_") and super().__contains__(key[3:]))


@dataclass(slots=True)  # slots: the hot path reads and counts on it
class HookPoint:
    spec: HookSpec
    default: Callable[..., int]
    engine: Engine | None = None
    fast: Callable[[], int] | None = None  # the engine bound to ``ctx``
    packer: struct.Struct = field(init=False)
    masks: tuple[int, ...] = field(init=False)
    ctx: bytearray = field(init=False, repr=False)
    # [calls, stale, generation] as int64 words at a fixed address
    # (``words_address``), so that a compiled call can count and see
    # staleness (:attr:`calls`, :attr:`stale`, :attr:`generation`)
    words: array = field(init=False, repr=False)
    fallbacks: int = 0
    errors: int = 0
    last_error: str = ""
    lo: int = field(init=False)  # bounds an unsigned r0 is valid within as it is
    hi: int = field(init=False)
    # the fields the attached program may load (the engine's ctx_reads), None: all
    reads: frozenset[str] | None = None

    def __post_init__(self) -> None:
        self.packer = ctx_struct(self.spec)
        fields = sorted(self.spec.fields, key=lambda f: f.offset)
        self.masks = tuple((1 << (8 * f.size)) - 1 for f in fields)
        self.ctx = bytearray(self.packer.size)
        self.words = array("q", (0, 1, 0))
        # r0 (unsigned) in lo..hi is valid as it is; anything else goes the slow way
        lo, hi = self.spec.ret_min, self.spec.ret_max
        self.lo, self.hi = (lo, hi) if 0 <= lo <= hi < 1 << 63 else (1, 0)

    @property
    def calls(self) -> int:
        """Decisions asked of this hook point so far."""
        return self.words[0]

    @calls.setter
    def calls(self, n: int) -> None:
        self.words[0] = n

    @property
    def stale(self) -> bool:
        """True until a caller writing fields in place has written the ones
        it keeps fixed; an attach, a detach, a move of a tiered engine to
        the JIT and :meth:`pack` (a caller writing every field) set it again."""
        return self.words[1] != 0

    @stale.setter
    def stale(self, value: bool) -> None:
        self.words[1] = 1 if value else 0

    @property
    def generation(self) -> int:
        """How many times the engine behind :attr:`fast` changed (an attach,
        a detach, a tiered engine's move): a call made for one generation
        must not run in another."""
        return self.words[2]

    def changed(self) -> None:
        """The engine behind :attr:`fast` changed: a new generation, stale."""
        self.words[2] += 1
        self.words[1] = 1

    @property
    def words_address(self) -> int:
        """Where :attr:`words` lives (stable for the hook point's life)."""
        return self.words.buffer_info()[0]

    def views(self) -> tuple[memoryview, memoryview, memoryview, memoryview]:
        """Views of the context buffer as arrays of u8, u16, u32 and u64 (native
        order: little-endian on every host the JIT supports); field ``f`` is
        element ``slot(spec, f)`` of the view of its width.  Writing a value
        outside the field's width raises (``ValueError``/``OverflowError``)."""
        mv = memoryview(self.ctx)
        n = len(self.ctx)
        return (mv, mv[: n - n % 2].cast("H"), mv[: n - n % 4].cast("I"),
                mv[: n - n % 8].cast("Q"))

    def pack(self, values: Sequence[int]) -> bytearray:
        """The hook's context buffer filled with ``values`` (each masked to its
        field's width), for callers that build the context as a tuple."""
        ctx = self.ctx
        self.stale = True
        try:
            self.packer.pack_into(ctx, 0, *values)
        except struct.error:  # a value wider than its field: keep its low bits
            self.packer.pack_into(ctx, 0, *(v & m for v, m in zip(values, self.masks,
                                                                    strict=True)))
        return ctx

    def propose(self) -> int | None:
        """Run the attached engine on the context as it stands; r0 when it is
        within the hook's range, else None (a fallback, counted: the caller
        uses its built-in policy).  The caller counts the call and, when its
        own contract check refuses r0, calls :meth:`refuse`."""
        try:
            r0 = self.fast()  # type: ignore[misc]
        except Exception as exc:  # an engine fault must never reach MM state
            return self.failed(exc)
        if self.lo <= r0 <= self.hi:
            return r0
        return self.settle(r0)

    def needs(self, name: str) -> bool:
        """Whether the attached program may load field ``name`` (a caller
        writing fields in place may skip the others; see :attr:`reads`)."""
        return self.reads is None or name in self.reads

    def refuse(self) -> None:
        """Count a proposal the caller's contract check refused."""
        self.fallbacks += 1

    def settle(self, r0: int) -> int | None:
        """The slow path of :meth:`propose` (for callers that call :attr:`fast`
        themselves and found r0 outside their precomputed bounds): r0 after
        a fault check, as a signed value, when within the hook's range; else
        None, counted as a fallback."""
        if r0 == FAULT:  # or a genuine -1: check() raises only after a fault
            check = getattr(self.engine, "check", None)
            if check is not None:
                try:
                    check()
                except Exception as exc:
                    return self.failed(exc)
        r = s64(r0)
        if self.spec.ret_min <= r <= self.spec.ret_max:
            return r
        self.fallbacks += 1
        return None

    def failed(self, exc: Exception) -> None:
        """Count an engine that raised (a fallback and an error); None."""
        self.errors += 1
        self.fallbacks += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        return None


class HookTable:
    """The hook points of one MM instance, by name."""

    def __init__(self, points: Sequence[tuple[HookSpec, Callable[..., int]]]) -> None:
        self.points: AliasDict = AliasDict(
            (spec.name, HookPoint(spec, default)) for spec, default in points)

    def resolve(self, name: str) -> str:
        """The point's own name for ``name`` (KeyError when there is none)."""
        return self.points[name].spec.name

    def attach(self, name: str, engine: Engine) -> None:
        """Attach ``engine``; one that can ``bind`` a buffer (both engines) is
        bound to the point's context buffer once, so a call of the JIT costs one
        native call.  A tiered engine hands over the JIT's bound function when
        it moves there."""
        hp = self.points[name]
        hp.engine = engine
        verified_for = getattr(engine, "ctx_hook", None)
        hp.reads = _field_names(hp.spec, getattr(engine, "ctx_reads", None)) \
            if verified_for == hp.spec.name else None
        hp.changed()  # in-place writers look at the fields to write again
        if isinstance(engine, Tiered):
            def swap(fn: Callable[[], int]) -> None:
                if hp.engine is engine:
                    hp.fast = fn
                    hp.changed()  # calls made for the interpreter are made again
            hp.fast = engine.bind(hp.ctx, swap)
            return
        bind = getattr(engine, "bind", None)
        hp.fast = bind(hp.ctx) if callable(bind) else _python_bound(engine, hp.ctx)

    def detach(self, name: str) -> None:
        hp = self.points[name]
        hp.engine = None
        hp.fast = None
        hp.reads = None
        hp.changed()

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
        hp.words[0] += 1  # hp.calls
        args = values if default_args is None else default_args
        if hp.engine is None:
            return hp.default(*args), None
        ctx = hp.pack(values)
        r0 = hp.propose()
        if r0 is None:
            return hp.default(*args), None
        if valid is not None and not valid(r0):
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
