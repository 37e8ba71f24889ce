"""Helper calls, local (bpf-to-bpf) calls and exits.

:func:`helper_call` checks each argument register against the kind the
helper record gives it (:class:`bpfvm.helpers.Arg`), then clobbers r1-r5
and types r0 from the record's return kind: a map lookup gives a
value-or-null pointer with a fresh id, usable only after a null check.
:func:`local_call` pushes a frame; :func:`leave` pops it (or checks the
program's return value against the hook's contract at the outermost exit).
"""

from __future__ import annotations

from collections.abc import Callable

from bpfvm.helpers import Arg, HelperSpec, Ret
from verifier.checks import is_pointerish
from verifier.domains.interval import Scalar
from verifier.domains.state import EMPTY_STACK, Frame, State
from verifier.domains.values import (
    K_MAP,
    K_PTR,
    K_SCALAR,
    K_UNINIT,
    UNINIT,
    UNKNOWN,
    Obj,
    Val,
    pointer,
)
from verifier.env import MAX_FRAMES, Env
from verifier.memory import readable

MAX_MEM_SIZE = 1 << 16  # largest buffer a helper may be asked to read
RETURNED_POINTER_SIZE = 8  # a returned pointer must address this many bytes (a PTE)


def _arg_name(spec: HelperSpec, i: int) -> str:
    return f"helper {spec.name} arg {i + 1} (r{i + 1})"


def _check_args(env: Env, state: State, spec: HelperSpec) -> State:
    ck = env.checker
    map_index: int | None = None
    args = spec.args
    unset: list[int] = []  # FORMAT_VALUE arguments left uninitialised
    for i, kind in enumerate(args):
        r = i + 1
        if state.reg(r).kind is K_UNINIT:
            if kind is Arg.FORMAT_VALUE:
                unset.append(i)
            else:
                state = ck.init(state, r)
            continue
        v = state.reg(r)
        what = _arg_name(spec, i)
        if kind is Arg.MAP:
            if v.kind is not K_MAP:
                ck.reject(f"{what}: expected a map handle, got {v.type_name()}", state, (r,))
            else:
                assert v.obj is not None
                map_index = int(v.obj.ref)
        elif kind in (Arg.MAP_KEY, Arg.MAP_VALUE):
            if map_index is None:  # the map argument was already rejected
                continue
            m = env.maps[map_index]
            size = m.key_size if kind is Arg.MAP_KEY else m.value_size
            word = "key" if kind is Arg.MAP_KEY else "value"
            if v.kind is not K_PTR:
                ck.reject(f"{what}: expected a pointer to the {size}-byte {word}, got "
                          f"{v.type_name()}", state, (r,))
            else:
                readable(env, state, r, Scalar.const(size), what)
        elif kind is Arg.MEM:
            nxt = args[i + 1] if i + 1 < len(args) else None
            if v.kind is not K_PTR:
                ck.reject(f"{what}: expected a pointer to memory, got {v.type_name()}",
                          state, (r,))
                continue
            if nxt is not Arg.SIZE:
                continue
            sz = state.reg(r + 1)
            if sz.kind is K_UNINIT:
                continue
            if sz.kind is not K_SCALAR:
                ck.reject(f"{_arg_name(spec, i + 1)}: expected a size, got {sz.type_name()}",
                          state, (r + 1,))
                continue
            assert sz.num is not None
            if sz.num.umax > MAX_MEM_SIZE:
                ck.reject(f"{_arg_name(spec, i + 1)}: size is not bounded (at most "
                          f"{MAX_MEM_SIZE})", state, (r + 1,))
                continue
            readable(env, state, r, sz.num, what)
        elif kind is Arg.CTX:
            if v.kind is not K_PTR or v.obj != env.ctx or not v.num or not v.num.is_const() \
                    or v.num.value != 0:
                ck.reject(f"{what}: expected the context pointer, got {v.describe()}", state,
                          (r,))
        elif kind in (Arg.ANYTHING, Arg.SIZE, Arg.FORMAT_VALUE):
            if is_pointerish(v):
                ck.reject(f"{what}: expected a scalar, got {v.type_name()}", state, (r,))
    if unset:
        state = _format_values(env, state, spec, unset)
    return state


def _format_values(env: Env, state: State, spec: HelperSpec, unset: list[int]) -> State:
    """Uninitialised FORMAT_VALUE arguments are fine where the format (a
    constant on the stack) reads fewer values; otherwise the helper would
    read whatever the register holds."""
    fmt = _constant_format(state, spec)
    reads = None if fmt is None or spec.format_reads is None else spec.format_reads(fmt)
    order = [i for i, kind in enumerate(spec.args) if kind is Arg.FORMAT_VALUE]
    for i in unset:
        if reads is not None and order.index(i) >= reads:
            continue  # not read
        why = (f"the format reads {reads} value{'s' if reads != 1 else ''}" if reads is not None
               else "the format may read it (it is not made of constants on the stack)")
        env.checker.reject(f"{_arg_name(spec, i)}: r{i + 1} is not initialised and {why}",
                           state, (i + 1,))
        state = state.set_reg(i + 1, UNKNOWN)
    return state


def _constant_format(state: State, spec: HelperSpec) -> bytes | None:
    """The bytes the helper may read as its format, up to the first NUL,
    when the MEM argument points at stack bytes known to be constants (a
    longer read than those bytes: None)."""
    if Arg.MEM not in spec.args:
        return None
    m = spec.args.index(Arg.MEM)
    p, size = state.reg(m + 1), state.reg(m + 2)
    if p.kind is not K_PTR or p.obj is None or p.obj.kind != "stack" or p.num is None \
            or not p.num.is_const() or size.kind is not K_SCALAR or size.num is None:
        return None
    known: dict[int, int] = {}
    for off, (width, v) in state.stack(int(p.obj.ref)).spills.items():
        if v.kind is K_SCALAR and v.num is not None and v.num.is_const():
            value = v.num.value
            for k in range(width):
                known[off + k] = value >> (8 * k) & 0xFF
    out = bytearray()
    start = p.num.smin
    for pos in range(start, start + min(size.num.umax, MAX_MEM_SIZE)):
        byte = known.get(pos)
        if byte is None:
            return None
        if byte == 0:
            break
        out.append(byte)
    return bytes(out)


def helper_call(env: Env, state: State, pc: int, helper_id: int) -> State:
    ck = env.checker
    spec = env.helpers.get(helper_id)
    if spec is None:
        ck.reject(f"call to unknown helper {helper_id}", state)
        return _clobber(state, UNKNOWN)
    if env.hook is not None and spec.name not in env.hook.helpers:
        ck.reject(f"helper {spec.name} is not allowed at hook '{env.hook.name}'", state)
    state = _check_args(env, state, spec)
    if spec.ret is Ret.MAP_VALUE_OR_NULL:
        m = state.reg(1)
        if m.kind is not K_MAP:
            return _clobber(state, UNKNOWN)
        assert m.obj is not None
        new_id = pc + 1  # the result's id (null-check links) and map value (entry)

        def scrub(v: Val) -> Val:  # results of this lookup's earlier runs
            if v.id == new_id or v.id == -new_id:  # and one-way links to them
                v = Val(v.kind, v.num, v.obj, v.null, 0)
            if v.obj is not None and v.obj.entry == new_id:
                v = Val(v.kind, v.num, v.obj.any_entry(), v.null, v.id)
            return v

        if state.has_id(new_id) or state.has_id(-new_id) or _has_entry(state, new_id):
            state = state.map_vals(scrub)  # (else map_vals would give an equal state back)
        return _clobber(state, pointer(env.map_obj(int(m.obj.ref), new_id), 0, True, new_id))
    return _clobber(state, UNINIT if spec.ret is Ret.VOID else UNKNOWN)


def _has_entry(state: State, entry: int) -> bool:
    """Some register or spill points into the map value ``entry``."""
    for f in state.frames:
        for v in f.regs:
            if v.obj is not None and v.obj.entry == entry:
                return True
        for _s, v in f.stack.spills.values():
            if v.obj is not None and v.obj.entry == entry:
                return True
    return False


def _clobber(state: State, r0: Val) -> State:
    return state.set_regs({0: r0, 1: UNINIT, 2: UNINIT, 3: UNINIT, 4: UNINIT, 5: UNINIT})


def local_call(env: Env, state: State, target: int) -> State | None:
    """The callee's entry state, or None when the call is rejected."""
    ck = env.checker
    chain = [0] + [env.code.insns[c].imm + c + 1 for c in env.chain]
    if target in chain:
        ck.reject(f"recursive call to the function at pc {target}", state)
        return None
    if len(state.frames) + 1 > MAX_FRAMES:
        ck.reject(f"call stack too deep: more than {MAX_FRAMES} frames", state)
        return None
    depth = len(state.frames)
    regs = (UNINIT,) + state.regs[1:6] + (UNINIT,) * 4 + (pointer(Obj("stack", depth, 512)),)
    return State(state.frames + (Frame(regs, EMPTY_STACK),))


def _dangling(depth: int) -> Callable[[Val], Val]:
    def fn(v: Val) -> Val:
        if v.kind is K_PTR and v.obj is not None and v.obj.kind == "stack" \
                and int(v.obj.ref) >= depth:
            return UNINIT
        return v

    return fn


def leave(env: Env, state: State) -> State | None:
    """At ``exit``: the caller's state after the return, or None at the
    outermost frame (after checking r0 against the program's contract)."""
    ck = env.checker
    if state.reg(0).kind is K_UNINIT:
        ck.reject("r0 is not set at exit", state, (0,))
        state = state.set_reg(0, UNKNOWN)
    r0 = state.reg(0)
    depth = state.depth
    if depth:
        if r0.kind is K_PTR and r0.obj is not None and r0.obj.kind == "stack" \
                and int(r0.obj.ref) == depth:
            ck.reject("returning a pointer to the callee's stack frame", state, (0,))
            r0 = UNKNOWN
        caller = state.frames[-2]
        regs = (r0,) + (UNINIT,) * 5 + caller.regs[6:]
        back = State(state.frames[:-2] + (Frame(regs, caller.stack),))
        return back.map_vals(_dangling(depth))
    _check_return(env, state, r0)
    return None


def _check_return(env: Env, state: State, r0: Val) -> None:
    ck = env.checker
    hook = env.hook
    if hook is not None and hook.returns_pointer:
        obj = hook.returns_pointer
        if r0.kind is K_SCALAR and r0.num is not None and r0.num.is_const() \
                and r0.num.value == 0:
            return
        if r0.kind is not K_PTR or r0.obj is None or r0.obj.kind != "region" \
                or r0.obj.ref != obj:
            ck.reject(f"r0 at exit must be a pointer into '{obj}' or 0, not {r0.describe()}",
                      state, (0,))
            return
        assert r0.num is not None
        if r0.num.smin < 0 or r0.num.smax + RETURNED_POINTER_SIZE > r0.obj.size:
            ck.reject(f"returned pointer may not address {RETURNED_POINTER_SIZE} bytes inside "
                      f"'{obj}' ({r0.obj.size} bytes): offset {r0.describe()}", state, (0,))
        return
    if r0.kind is not K_SCALAR:
        ck.reject(f"returning {r0.type_name()} r0 where a scalar is expected", state, (0,))
        return
    if hook is None:
        return
    assert r0.num is not None
    if r0.num.smin < hook.ret_min or r0.num.smax > hook.ret_max:
        ck.reject(f"return value r0 may be outside [{hook.ret_min}, {hook.ret_max}] "
                  f"(hook '{hook.name}')", state, (0,))
