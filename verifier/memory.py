"""Memory accesses: where a pointer may point, and what a load gives back.

:func:`access` checks one load, store or atomic through a pointer register
against the object it points into (the ``ValidAccess`` precondition) and
returns the new state and, for loads, the loaded value.  Context accesses
must match a field of the hook's layout exactly; stack accesses stay in the
frame and read initialised bytes only (spills come back with their type);
map values, regions, helper memory and the generic buffer are checked for
every offset the pointer may have.  :func:`readable` checks a range a helper
will read.  No pointer is ever stored outside the stack.
"""

from __future__ import annotations

from verifier.checks import is_pointerish
from verifier.domains.arith import loaded, sext, truncate
from verifier.domains.interval import Scalar
from verifier.domains.state import STACK_SIZE, State
from verifier.domains.values import (
    K_MAP,
    K_PTR,
    K_SCALAR,
    K_TOP,
    K_UNINIT,
    UNKNOWN,
    Obj,
    Val,
    pointer,
    scalar,
)
from verifier.env import Env

OBJ_WORD = {"map_value": "map value", "region": "region", "mem": "helper memory",
            "buf": "buffer", "ctx": "context", "stack": "stack"}


def _span(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"[{lo}, {hi}]"


def deref(env: Env, state: State, reg: int, what: str) -> tuple[State, Val | None]:
    """The pointer in ``reg`` if it may be dereferenced (non-null), else None."""
    ck = env.checker
    p = state.reg(reg)
    if p.kind is K_PTR and p.null:
        ck.reject(f"possible null pointer dereference: r{reg} is {p.type_name()} "
                  "(check it against 0 first)", state, (reg,))
        p = Val(K_PTR, p.num, p.obj, False, 0)
        return state.set_reg(reg, p), p
    if p.kind is K_PTR:
        return state, p
    why = {K_SCALAR: "is a scalar, not a pointer", K_MAP: "is a map handle, not a pointer",
           K_TOP: "holds different types on different paths",
           K_UNINIT: "is not initialised"}[p.kind]
    ck.reject(f"invalid memory {what}: r{reg} {why}", state, (reg,))
    return state, None


def _bounds(env: Env, state: State, p: Val, reg: int, off: int,
            size: int) -> tuple[int, int] | None:
    """The byte range [lo, hi) the access may touch, if inside the object."""
    assert p.obj is not None and p.num is not None
    lo, hi = p.num.smin + off, p.num.smax + off + size
    if p.obj.kind == "stack":
        if lo < -STACK_SIZE or hi > 0:
            env.checker.reject(f"invalid stack access: offset {_span(lo, hi - size)} size {size} "
                               f"(the stack is fp-{STACK_SIZE} to fp)", state, (reg,))
            return None
        return lo, hi
    if lo < 0 or hi > p.obj.size:
        env.checker.reject(f"out-of-bounds access to {OBJ_WORD[p.obj.kind]}: offset "
                           f"{_span(lo, hi - size)} size {size} ({OBJ_WORD[p.obj.kind]} is "
                           f"{p.obj.size} bytes)", state, (reg,))
        return None
    return lo, hi


def _ctx(env: Env, state: State, p: Val, reg: int, off: int, size: int, write: bool,
         signed: bool, atomic: bool) -> Val:
    ck = env.checker
    assert p.num is not None
    if not p.num.is_const():
        ck.reject(f"variable-offset context access through r{reg}", state, (reg,))
        return UNKNOWN
    pos = p.num.smin + off
    hook = env.hook
    assert hook is not None
    fld = hook.field_at(pos, size)
    if fld is None:
        ck.reject(f"invalid context access: no field of hook '{hook.name}' at offset {pos} "
                  f"with size {size}", state, (reg,))
        return UNKNOWN
    if atomic:
        ck.reject(f"atomic operation on context field '{fld.name}'", state, (reg,))
    elif write and not fld.writable:
        ck.reject(f"write to read-only context field '{fld.name}'", state, (reg,))
    if write or not fld.pointer:
        return scalar(loaded(size, signed))
    osize = env.objects.get(fld.pointer)
    if osize is None:
        ck.reject(f"context field '{fld.name}' points at object '{fld.pointer}' whose size "
                  "is unknown", state, (reg,))
        return UNKNOWN
    if size != 8 or signed:
        ck.reject(f"context field '{fld.name}' holds a pointer: load it whole with a "
                  "64-bit load", state, (reg,))
        return UNKNOWN
    return pointer(Obj("region", fld.pointer, osize))


def _stack_load(env: Env, state: State, depth: int, lo: int, hi: int, size: int,
                signed: bool, reg: int) -> Val:
    ck = env.checker
    st = state.stack(depth)
    const = hi - lo == size
    for o, s, v in st.overlapping(lo, hi - lo):
        if const and o == lo and s == size:
            if v.kind is K_SCALAR and size < 8 and signed:
                assert v.num is not None
                return scalar(sext(v.num, 8 * size, 64))
            return v
        if const and o == lo and size < s and v.kind is K_SCALAR:
            # the low bytes of a wider scalar spill (little-endian): its value cut to
            # size; the value itself (and its links) when it fits
            assert v.num is not None
            if v.num.umax < 1 << (8 * size) and not signed:
                return v
            low = truncate(v.num, size)
            return scalar(sext(low, 8 * size, 64) if signed else low)
        if v.kind is not K_SCALAR:
            ck.reject(f"partial read of a spilled pointer at fp{o} ({v.type_name()})", state,
                      (reg,))
            return UNKNOWN
    if not st.is_init(lo, hi - lo):
        first = next(b for b in range(lo, hi) if not st.is_init(b, 1))
        extra = f" (fp{first} is not initialised)" if first != lo else ""
        ck.reject(f"read of uninitialised stack at fp{lo} size {hi - lo}{extra}", state, (reg,))
        return UNKNOWN
    return scalar(loaded(size, signed))


def _stack_store(env: Env, state: State, depth: int, lo: int, hi: int, size: int,
                 val: Val | None, src: int | None) -> State:
    st = state.stack(depth)
    if hi - lo != size:  # variable offset: any of the bytes may change
        if val is not None and is_pointerish(val):
            env.checker.reject(f"spill of pointer r{src} at a variable stack offset",
                               state, (src,) if src is not None else ())
        return state.set_stack(depth, st.forget(lo, hi - lo))
    if val is not None and is_pointerish(val) and size != 8:
        env.checker.reject(f"partial spill of pointer r{src}: {size} bytes (a pointer takes 8)",
                           state, (src,) if src is not None else ())
        val = None
    if val is not None and val.kind is K_SCALAR and size < 8:
        assert val.num is not None
        if val.num.umax >> (8 * size):  # cut: no longer the register's value
            val = scalar(truncate(val.num, size))
    return state.set_stack(depth, st.write(lo, size, val))


def _stack_atomic(env: Env, state: State, depth: int, lo: int, hi: int, size: int,
                  reg: int) -> tuple[State, Val]:
    """An atomic read-modify-write of stack bytes ``[lo, hi)``: they must be
    initialised and hold no part of a spilled pointer (nor of a value that
    is a pointer on some path): an atomic would turn the pointer into a
    scalar (fetch, xchg, cmpxchg hand it out) or change it behind the
    verifier's back (add, or, and, xor).  Afterwards the bytes hold an
    unknown scalar, and so does the fetched value."""
    for o, _s, v in state.stack(depth).overlapping(lo, hi - lo):
        if v.kind is not K_SCALAR:
            env.checker.reject(f"atomic operation on a spilled pointer at fp{o} "
                               f"({v.type_name()})", state, (reg,))
            return _stack_store(env, state, depth, lo, hi, size, None, None), UNKNOWN
    before = _stack_load(env, state, depth, lo, hi, size, False, reg)
    if before.kind is not K_SCALAR:  # rejected (uninitialised bytes)
        return state, UNKNOWN
    after = _stack_store(env, state, depth, lo, hi, size, None, None)
    return after, scalar(loaded(size, False))


def _aligned(p: Val, off: int, size: int) -> bool:
    """Whether every address ``p + off`` is a multiple of ``size`` (objects
    start 8-byte aligned): an atomic needs its natural alignment."""
    assert p.num is not None
    low = size - 1
    return not (p.num.t.m & low) and not ((p.num.t.v + off) & low)


def access(env: Env, state: State, reg: int, off: int, size: int, *, write: bool = False,
           val: Val | None = None, src: int | None = None, signed: bool = False,
           atomic: bool = False) -> tuple[State, Val]:
    """Check ``*(size *)(reg + off)``; for a store, ``val`` (from register
    ``src``, None for an immediate) is written.  Returns the new state and
    the loaded value (UNKNOWN for stores)."""
    what = "write" if write else "read"
    state, p = deref(env, state, reg, "atomic access" if atomic else what)
    if p is None:
        return state, UNKNOWN
    assert p.obj is not None
    kind = p.obj.kind
    if write and val is not None and kind != "stack" and is_pointerish(val):
        env.checker.reject(f"pointer leak: storing r{src} ({val.type_name()}) into the "
                           f"{OBJ_WORD[kind]}", state, (reg, src) if src is not None else (reg,))
    if kind == "ctx":
        return state, _ctx(env, state, p, reg, off, size, write, signed, atomic)
    if atomic and not _aligned(p, off, size):
        env.checker.reject(f"misaligned atomic access: r{reg}{off:+d} is not a multiple of "
                           f"{size} bytes", state, (reg,))
        return state, UNKNOWN
    if write and kind == "map_value" and env.maps[int(p.obj.ref)].readonly:
        env.checker.reject(f"write into read-only map '{p.obj.name}'", state, (reg,))
    rng = _bounds(env, state, p, reg, off, size)
    if rng is None:
        return state, scalar(loaded(size, signed))
    if kind != "stack":
        return state, scalar(loaded(size, signed))
    depth = int(p.obj.ref)
    lo, hi = rng
    if atomic:
        return _stack_atomic(env, state, depth, lo, hi, size, reg)
    if write:
        if val is None:  # immediate store: value known from the instruction
            return _stack_store(env, state, depth, lo, hi, size, None, None), UNKNOWN
        return _stack_store(env, state, depth, lo, hi, size, val, src), UNKNOWN
    return state, _stack_load(env, state, depth, lo, hi, size, signed, reg)


def readable(env: Env, state: State, reg: int, size: Scalar, what: str) -> bool:
    """Check that a helper may read ``size`` bytes at ``reg`` (stack bytes
    must be initialised).  Returns False after rejecting."""
    ck = env.checker
    state, p = deref(env, state, reg, "read")
    if p is None:
        return False
    assert p.obj is not None and p.num is not None
    n = size.umax
    if p.obj.kind == "ctx":
        ck.reject(f"{what}: r{reg} points into the context; pass a stack or map value buffer",
                  state, (reg,))
        return False
    if n == 0:
        return True
    lo, hi = p.num.smin, p.num.smax + n
    limit = (-STACK_SIZE, 0) if p.obj.kind == "stack" else (0, p.obj.size)
    if lo < limit[0] or hi > limit[1]:
        ck.reject(f"{what}: r{reg} range [{lo}, {hi}) is outside the "
                  f"{OBJ_WORD[p.obj.kind]} ({_span(*limit)})", state, (reg,))
        return False
    if p.obj.kind == "stack":
        st = state.stack(int(p.obj.ref))
        if not st.is_init(lo, hi - lo):
            first = next(b for b in range(lo, hi) if not st.is_init(b, 1))
            ck.reject(f"{what}: r{reg} points at uninitialised stack (fp{first})", state, (reg,))
            return False
        for o, _s, v in st.overlapping(lo, hi - lo):
            if v.kind is not K_SCALAR:
                ck.reject(f"{what}: r{reg} points at a spilled pointer (fp{o}); it would "
                          "leak", state, (reg,))
                return False
    return True

