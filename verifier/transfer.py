"""Transfer functions: the effect of one instruction on an abstract state.

:data:`TRANSFER` maps each :class:`bpfvm.isa.Kind` to a function
``(env, pc, insn, spec, state) -> [Edge]``.  An edge is ``("next", pc,
state)`` inside the function, ``("call", entry, state)`` into a local
call, or ``("ret", 0, state)`` back to the caller.  A conditional jump
yields one edge per feasible outcome, each carrying the state refined by
that outcome (the ``Assume`` of the edge).  Preconditions are checked via
``env.checker`` (which reports and then assumes them); memory accesses are
in :mod:`verifier.memory`, calls and exits in :mod:`verifier.calls`.
"""

from __future__ import annotations

from collections.abc import Callable

from bpfvm import isa
from bpfvm.isa.insn import Insn, lddw_value, map_value_offset
from verifier.calls import helper_call, leave, local_call
from verifier.checks import MAX_VAR_OFF, SCALAR, Bounded, TypeIs
from verifier.domains import arith
from verifier.domains.compare import refine
from verifier.domains.interval import Scalar
from verifier.domains.state import State
from verifier.domains.values import (
    DIRECT,
    K_MAP,
    K_PTR,
    K_SCALAR,
    K_UNINIT,
    UNKNOWN,
    Obj,
    Val,
    const,
    pointer,
    scalar,
)
from verifier.env import Env
from verifier.memory import access

Edge = tuple[str, int, State]
Transfer = Callable[[Env, int, Insn, isa.OpSpec, State], list[Edge]]


_LDDW = isa.Kind.LDDW  # read once: a member lookup on an Enum class is slow


def _next(pc: int, spec: isa.OpSpec, state: State) -> list[Edge]:
    return [("next", pc + 2 if spec.kind is _LDDW else pc + 1, state)]


def _mov(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    ck = env.checker
    if "src" in spec.uses:
        if state.frames[-1].regs[insn.src].kind is K_UNINIT:
            state = ck.init(state, insn.src)
        v = state.reg(insn.src)
        if spec.width == 64 and v.kind is K_SCALAR and insn.src != insn.dst:
            state, v = _link(state, insn.src, v, SCALAR_IDS + pc)
        if spec.width == 32:
            state = ck.scalar(state, insn.src, "32-bit move of {type} {r} would truncate a "
                              "pointer")
            v = state.reg(insn.src)
            assert v.num is not None
            if v.num.umax <= 0xFFFFFFFF and insn.src != insn.dst:
                # the upper half is zero: the copy equals the source (linked)
                state, v = _link(state, insn.src, v, SCALAR_IDS + pc)
            else:
                v = scalar(arith.zext32(v.num))
    else:
        v = env.const(insn.imm if spec.width == 64 else insn.imm & 0xFFFFFFFF)
    return [("next", pc + 1, state.set_reg(insn.dst, v))]


SCALAR_IDS = 1 << 40  # ids of linked scalar copies (pointer ids are call pcs + 1)


def _link(state: State, src: int, v: Val, new_id: int) -> tuple[State, Val]:
    """Give the scalar in ``src`` an id its copies share, so that a bound
    learnt on one copy holds for all (the kernel's find_equal_scalars)."""
    if v.id:
        return state, v
    old = new_id

    def scrub(x: Val) -> Val:
        return Val(x.kind, x.num, x.obj, x.null, 0) if x.id == old else x

    if state.has_id(old):
        state = state.map_vals(scrub)
    v = Val(K_SCALAR, v.num, None, False, new_id)
    return state.set_reg(src, v), v


def _movsx(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    ck = env.checker
    state = ck.init(state, insn.src)
    state = ck.scalar(state, insn.src, "sign extension of {type} {r}")
    num = state.reg(insn.src).num
    assert num is not None
    return _next(pc, spec, state.set_reg(insn.dst, scalar(arith.sext(num, insn.off, spec.width))))


def _ptr_alu(env: Env, state: State, insn: Insn, spec: isa.OpSpec, dst: Val, src: Val,
             src_reg: int | None) -> Val:
    """``dst OP src`` where one of them is a pointer (or handle, or mixed)."""
    ck = env.checker
    op = spec.op
    culprit, other = (insn.dst, dst) if dst.kind is not K_SCALAR else (src_reg, src)
    name = f"r{culprit}" if culprit is not None else "the immediate"
    if spec.width == 32:
        ck.reject(f"32-bit arithmetic on pointer {name} ({other.type_name()})", state,
                  (insn.dst,))
        return UNKNOWN
    if op == "sub" and dst.kind is K_PTR and src.kind is K_PTR:
        if not dst.obj.same_storage(src.obj) or dst.null or src.null:
            ck.reject(f"subtracting pointers to different objects: r{insn.dst} "
                      f"({dst.type_name()}) and r{src_reg} ({src.type_name()})", state,
                      (insn.dst, src_reg or 0))
            return UNKNOWN
        if not dst.obj.is_one_object(src.obj):  # values of one map, perhaps two of them:
            return UNKNOWN  # their distance is not known (the kernel's result, too)
        assert dst.num is not None and src.num is not None
        return scalar(arith.alu("sub", dst.num, src.num, 64))
    if op == "add" and K_MAP in (dst.kind, src.kind) and (_is_zero(src) or _is_zero(dst)):
        return dst if dst.kind is K_MAP else src  # the kernel allows a map handle + 0
    ptr, num_val, num_reg = (dst, src, src_reg) if dst.kind is K_PTR else (src, dst, insn.dst)
    ok = (ptr.kind is K_PTR and num_val.kind is K_SCALAR
          and (op == "add" or (op == "sub" and ptr is dst)))
    if not ok:
        ck.reject(f"pointer arithmetic '{spec.kop}' on {name} ({other.type_name()}) is not "
                  "allowed", state, (insn.dst,) if src_reg is None else (insn.dst, src_reg))
        return UNKNOWN
    if ptr.null:
        ck.reject(f"pointer arithmetic on {ptr.type_name()} {name} before a null check",
                  state, (culprit if culprit is not None else insn.dst,))
        return UNKNOWN
    if num_reg is not None:
        pre = Bounded(num_reg, insn.dst if ptr is dst else num_reg)
        if pre.failure(state) is not None:
            ck.require(state, pre)
            return UNKNOWN
    assert ptr.num is not None and num_val.num is not None
    off = arith.alu(op, ptr.num, num_val.num, 64)
    if off.smin < -MAX_VAR_OFF or off.smax > MAX_VAR_OFF:
        ck.reject(f"pointer r{insn.dst} would move out of +-{MAX_VAR_OFF} of its object",
                  state, (insn.dst,))
        return UNKNOWN
    return Val(K_PTR, off, ptr.obj, False, ptr.id)


def _is_zero(v: Val) -> bool:
    return v.kind is K_SCALAR and v.num is not None and v.num.is_const() and v.num.value == 0


_SHIFTS = ("lsh", "rsh", "arsh")
_DIVISIONS = ("div", "sdiv", "mod", "smod")


def _constant_operand_problem(insn: Insn, spec: isa.OpSpec) -> str | None:
    """The kernel's static checks of immediate operands (check_alu_op):
    a constant shift must be below the width, a constant divisor non-zero.
    The ISA defines both cases; the kernel rejects them as certain bugs."""
    if spec.src_reg:
        return None
    if spec.op in _SHIFTS and not 0 <= insn.imm < spec.width:
        return f"invalid shift {insn.imm} (must be 0..{spec.width - 1})"
    if spec.op in _DIVISIONS and insn.imm == 0:
        return f"{spec.op} by constant zero"
    return None


def _alu(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    ck = env.checker
    if "src" not in spec.uses:
        problem = _constant_operand_problem(insn, spec)
        if problem:
            ck.reject(problem, state)
    src_reg = "src" in spec.uses
    if state.frames[-1].regs[insn.dst].kind is K_UNINIT:
        state = ck.init(state, insn.dst)
    if src_reg and state.frames[-1].regs[insn.src].kind is K_UNINIT:
        state = ck.init(state, insn.src)
    regs = state.frames[-1].regs
    dst = regs[insn.dst]
    # the operand: a register, or the immediate sign-extended to 64 bits (32-bit views
    # truncate)
    src = regs[insn.src] if src_reg else env.const(insn.imm)
    if dst.kind is K_SCALAR and src.kind is K_SCALAR:
        assert dst.num is not None and src.num is not None
        res = scalar(arith.alu(spec.op, dst.num, src.num, spec.width))
    else:
        res = _ptr_alu(env, state, insn, spec, dst, src, insn.src if src_reg else None)
    return [("next", pc + 1, state.set_reg(insn.dst, res))]


def _neg(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    ck = env.checker
    state = ck.init(state, insn.dst)
    state = ck.scalar(state, insn.dst, "negation of {type} {r}")
    num = state.reg(insn.dst).num
    assert num is not None
    return _next(pc, spec, state.set_reg(insn.dst, scalar(arith.neg(num, spec.width))))


def _end(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    ck = env.checker
    state = ck.init(state, insn.dst)
    state = ck.scalar(state, insn.dst, "byte swap of {type} {r}")
    num = state.reg(insn.dst).num
    assert num is not None
    if spec.op == "le":
        res = arith.truncate(num, spec.width // 8)
    else:
        res = arith.bswap(num, spec.width)
    return _next(pc, spec, state.set_reg(insn.dst, scalar(res)))


def _lddw(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    ck = env.checker
    second = env.code.insns[pc + 1]
    if spec.key == "lddw":
        return _next(pc, spec, state.set_reg(insn.dst, const(lddw_value(insn, second))))
    idx = insn.imm
    if not 0 <= idx < len(env.maps):
        ck.reject(f"map index {idx} out of range ({len(env.maps)} maps declared)", state)
        return _next(pc, spec, state.set_reg(insn.dst, UNKNOWN))
    m = env.maps[idx]
    if spec.key == "lddw_map":
        v = Val(K_MAP, None, Obj("map", idx, 0, m.name))
    else:
        if m.kind != "array":
            ck.reject(f"direct value access needs an array map; '{m.name}' is a {m.kind} map",
                      state)
        off = map_value_offset(insn, second)  # unsigned, as the engines read it
        if off >= m.value_size:
            ck.reject(f"direct value access to map '{m.name}' at offset {off}: outside its "
                      f"{m.value_size}-byte value", state)
            off = 0  # assumed inside, so that the uses do not report it again
        v = pointer(env.map_obj(idx, DIRECT), off)
    return _next(pc, spec, state.set_reg(insn.dst, v))


def _ldx(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    if state.frames[-1].regs[insn.src].kind is K_UNINIT:
        state = env.checker.init(state, insn.src)
    state, v = access(env, state, insn.src, insn.off, spec.width, signed=spec.signed)
    return [("next", pc + 1, state.set_reg(insn.dst, v))]


def _st(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    if state.frames[-1].regs[insn.dst].kind is K_UNINIT:
        state = env.checker.init(state, insn.dst)
    width = spec.width
    p = state.frames[-1].regs[insn.dst]
    num = p.num
    if p.kind is K_PTR and not p.null and p.obj.kind == "stack" and num.t.m == 0 \
            and num.smin == num.smax and (width == 8 or insn.imm >= 0) \
            and -512 <= num.smin + insn.off and num.smin + insn.off + width <= 0:
        # a constant stored in the frame: what access() and _remember_imm() do
        # together (nothing to reject), in one write
        off, d = num.smin + insn.off, int(p.obj.ref)
        value = insn.imm & ((1 << (8 * width)) - 1)
        return _next(pc, spec, state.set_stack(d, state.stack(d).write(off, width,
                                                                        env.const(value))))
    state, _ = access(env, state, insn.dst, insn.off, width, write=True)
    if spec.width == 8 or insn.imm >= 0:  # keep the constant in a stack spill
        state = _remember_imm(env, state, insn, spec)
    return _next(pc, spec, state)


def _remember_imm(env: Env, state: State, insn: Insn, spec: isa.OpSpec) -> State:
    p = state.reg(insn.dst)
    if p.kind is not K_PTR or p.obj is None or p.obj.kind != "stack" or p.num is None \
            or not p.num.is_const():
        return state
    off = p.num.smin + insn.off
    if off < -512 or off + spec.width > 0:
        return state
    d = int(p.obj.ref)
    value = insn.imm & ((1 << (8 * spec.width)) - 1)
    return state.set_stack(d, state.stack(d).write(off, spec.width, env.const(value)))


def _stx(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    state = env.checker.init(state, insn.dst, insn.src)
    v, p = state.reg(insn.src), state.reg(insn.dst)
    if v.kind is K_SCALAR and p.kind is K_PTR and p.obj.kind == "stack" \
            and (spec.width == 8 or v.num.umax >> (8 * spec.width) == 0):
        # a spill holds the register's value: link them, so that a bound learnt on
        # one (or on a fill of the spill) holds for the other (as the kernel does)
        state, v = _link(state, insn.src, v, SCALAR_IDS + pc)
    state, _ = access(env, state, insn.dst, insn.off, spec.width, write=True,
                      val=v, src=insn.src)
    return _next(pc, spec, state)


def _atomic(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    ck = env.checker
    fetch = spec.op.startswith("fetch") or spec.op in ("xchg", "cmpxchg")
    state = ck.init(state, insn.dst, insn.src)
    state = ck.scalar(state, insn.src, "atomic operation with {type} {r}: pointers may not "
                      "be stored")
    if spec.op == "cmpxchg":
        state = ck.init(state, 0)
        state = ck.scalar(state, 0, "cmpxchg compares with {type} {r}; a scalar is needed")
    if fetch and insn.src == isa.FRAME_REG and spec.op != "cmpxchg":
        ck.reject("r10 is read-only", state, (10,))
    state, old = access(env, state, insn.dst, insn.off, spec.width, write=True, atomic=True)
    if spec.op == "cmpxchg":
        state = state.set_reg(0, old)
    elif fetch and insn.src != isa.FRAME_REG:
        state = state.set_reg(insn.src, old)
    return _next(pc, spec, state)


def _unsupported(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    env.checker.reject("legacy packet access (ldabs/ldind) is not supported", state)
    return _next(pc, spec, state.set_regs({0: UNKNOWN}))


def _ja(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    return [("next", t, state) for t in env.code.succ[pc]]


def _null_check(env: Env, state: State, reg: int, to_null: bool, ptr: Val) -> State:
    """Refine the value-or-null pointer in ``reg`` (and every copy of it)."""
    if not ptr.null:
        return state
    new = const(0) if to_null else Val(K_PTR, ptr.num, ptr.obj, False, 0)
    if ptr.id == 0:
        return state.set_reg(reg, new)
    if ptr.id < 0:  # one-way: only when not null, the values of lookup X are not null
        state = state.set_reg(reg, new)
        if to_null or not state.has_id(-ptr.id):
            return state
        linked = -ptr.id

        def not_null(v: Val) -> Val:
            if v.id == linked and v.kind is K_PTR:
                return Val(K_PTR, v.num, v.obj, False, 0)
            return v
        return state.map_vals(not_null)
    return state.replace(K_PTR, ptr.id, new)


def _jcond(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    ck = env.checker
    src_reg = "src" in spec.uses
    if state.frames[-1].regs[insn.dst].kind is K_UNINIT:
        state = ck.init(state, insn.dst)
    if src_reg and state.frames[-1].regs[insn.src].kind is K_UNINIT:
        state = ck.init(state, insn.src)
    a = state.frames[-1].regs[insn.dst]
    b = state.frames[-1].regs[insn.src] if src_reg else env.const(insn.imm)
    fall, taken = env.code.succ[pc][0], env.code.succ[pc][-1]
    outcomes: list[tuple[bool, State | None]] = []
    if a.kind is K_SCALAR and b.kind is K_SCALAR:
        assert a.num is not None and b.num is not None
        for t in (False, True):
            r = refine(spec.op, a.num, b.num, spec.width, t)
            if r is None:
                outcomes.append((t, None))
                continue
            s = _narrow(state, insn.dst, a, r[0])
            if spec.src_reg and insn.src != insn.dst:
                s = _narrow(s, insn.src, b, r[1])
            outcomes.append((t, s))
    else:
        outcomes = _pointer_jcond(env, state, insn, spec, a, b)
    env.branches[(env.chain, pc, env.part)] = (outcomes[0][1] is not None,
                                               outcomes[1][1] is not None)
    return [("next", taken if t else fall, s) for t, s in outcomes if s is not None]


def _narrow(state: State, reg: int, old: Val, num: Scalar) -> State:
    """Set the refined ``num`` in ``reg`` and in every linked copy of it."""
    if not old.id:
        return state.set_reg(reg, scalar(num))
    return state.replace(K_SCALAR, old.id, Val(K_SCALAR, num, None, False, old.id))


def _pointer_jcond(env: Env, state: State, insn: Insn, spec: isa.OpSpec, a: Val,
                   b: Val) -> list[tuple[bool, State | None]]:
    ck = env.checker
    both = [(False, state), (True, state)]
    regs = (insn.dst, insn.src) if spec.src_reg else (insn.dst,)
    bname = f"r{insn.src}" if spec.src_reg else f"{insn.imm}"
    if spec.width == 32:
        ck.reject(f"32-bit comparison of pointer: r{insn.dst} ({a.type_name()}) and {bname} "
                  f"({b.type_name()})", state, regs)
        return both
    zero = next((v for v in (a, b) if v.kind is K_SCALAR and v.num is not None
                 and v.num.is_const() and v.num.value == 0), None)
    ptr, preg = (a, insn.dst) if a.kind is K_PTR else (b, insn.src)
    if zero is not None and ptr.kind is K_PTR and spec.op in ("jeq", "jne"):
        eq_null = _null_check(env, state, preg, True, ptr) if ptr.null else None
        non_null = _null_check(env, state, preg, False, ptr)
        if spec.op == "jeq":
            return [(False, non_null), (True, eq_null)]
        return [(False, eq_null), (True, non_null)]
    if a.kind is K_PTR and b.kind is K_PTR and a.obj.same_storage(b.obj) and not a.null \
            and not b.null:
        return both
    if a.kind is K_PTR and b.kind is K_PTR:
        ck.reject(f"comparison of pointers to different objects: r{insn.dst} "
                  f"({a.type_name()}) and r{insn.src} ({b.type_name()})", state, regs)
    elif zero is not None and ptr.kind is K_PTR:
        ck.reject(f"pointer r{preg} ({ptr.type_name()}) may only be compared with 0 using "
                  "== or !=", state, regs)
    else:
        ck.reject(f"comparison of {a.type_name()} r{insn.dst} with {b.type_name()} {bname}",
                  state, regs)
    return both


def _call(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    return _next(pc, spec, helper_call(env, state, pc, insn.imm))


def _callx(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    ck = env.checker
    state = ck.init(state, insn.dst)
    v = state.reg(insn.dst)
    if v.kind is not K_SCALAR or v.num is None or not v.num.is_const():
        ck.reject(f"callx through r{insn.dst}: the helper id must be a known constant, not "
                  f"{v.describe()}", state, (insn.dst,))
        return _next(pc, spec, state.set_regs({0: UNKNOWN, 1: UNKNOWN, 2: UNKNOWN,
                                                3: UNKNOWN, 4: UNKNOWN, 5: UNKNOWN}))
    return _next(pc, spec, helper_call(env, state, pc, v.num.value))


def _call_local(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    target = pc + 1 + insn.imm
    entry = local_call(env, state, target)
    return [] if entry is None else [("call", target, entry)]


def _exit(env: Env, pc: int, insn: Insn, spec: isa.OpSpec, state: State) -> list[Edge]:
    back = leave(env, state)
    return [] if back is None else [("ret", 0, back)]


TRANSFER: dict[isa.Kind, Transfer] = {
    isa.Kind.ALU: _alu, isa.Kind.NEG: _neg, isa.Kind.MOV: _mov, isa.Kind.MOVSX: _movsx,
    isa.Kind.END: _end, isa.Kind.JA: _ja, isa.Kind.JCOND: _jcond, isa.Kind.CALL: _call,
    isa.Kind.CALL_LOCAL: _call_local, isa.Kind.CALLX: _callx, isa.Kind.EXIT: _exit,
    isa.Kind.LDDW: _lddw, isa.Kind.LDX: _ldx, isa.Kind.ST: _st, isa.Kind.STX: _stx,
    isa.Kind.ATOMIC: _atomic, isa.Kind.LDABS: _unsupported, isa.Kind.LDIND: _unsupported,
}
assert set(TRANSFER) == set(isa.Kind), "every instruction kind needs a transfer function"

__all__ = ["TRANSFER", "Edge", "SCALAR", "TypeIs", "Scalar"]
