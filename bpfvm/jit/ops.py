"""LLVM IR for the arithmetic of every ALU, jump-condition and atomic operation.

Each table maps an operation name of :mod:`bpfvm.isa` (``spec.op``) to a
function emitting IR with an ``ir.IRBuilder`` on integer values of the
operating width (i32 or i64); the caller truncates operands and
zero-extends results.  The rules are those of :mod:`bpfvm.isa.semantics`:
shift amounts masked to the width, division by zero gives 0, modulo by zero
leaves the dividend, signed division truncates toward zero with
``INT_MIN s/ -1 = INT_MIN`` and ``INT_MIN s% -1 = 0`` (LLVM's ``sdiv`` and
``srem`` are undefined there, so the divisor is replaced before dividing).

This module knows nothing of instructions, registers or memory.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

BinEmit = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]
CondEmit = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]


def _const(like: ir.Value, value: int) -> ir.Constant:
    return ir.Constant(like.type, value)


def _safe_divisor(b: ir.IRBuilder, y: ir.Value, also_minus_one: bool) -> ir.Value:
    """``y`` with the values the division must not see (0, and -1 for signed) replaced by 1."""
    bad = b.icmp_unsigned("==", y, _const(y, 0))
    if also_minus_one:
        bad = b.or_(bad, b.icmp_signed("==", y, _const(y, -1)))
    return b.select(bad, _const(y, 1), y)


def _div(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    q = b.udiv(x, _safe_divisor(b, y, False))
    return b.select(b.icmp_unsigned("==", y, _const(y, 0)), _const(x, 0), q)


def _mod(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    r = b.urem(x, _safe_divisor(b, y, False))
    return b.select(b.icmp_unsigned("==", y, _const(y, 0)), x, r)


def _sdiv(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    q = b.sdiv(x, _safe_divisor(b, y, True))
    q = b.select(b.icmp_signed("==", y, _const(y, -1)), b.neg(x), q)  # wraps for INT_MIN
    return b.select(b.icmp_unsigned("==", y, _const(y, 0)), _const(x, 0), q)


def _smod(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    r = b.srem(x, _safe_divisor(b, y, True))
    r = b.select(b.icmp_signed("==", y, _const(y, -1)), _const(x, 0), r)
    return b.select(b.icmp_unsigned("==", y, _const(y, 0)), x, r)


def _shift(kind: str) -> BinEmit:
    def emit(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
        amount = b.and_(y, _const(y, x.type.width - 1))
        return getattr(b, kind)(x, amount)
    return emit


BINOPS: dict[str, BinEmit] = {
    "add": lambda b, x, y: b.add(x, y),
    "sub": lambda b, x, y: b.sub(x, y),
    "mul": lambda b, x, y: b.mul(x, y),
    "div": _div,
    "sdiv": _sdiv,
    "mod": _mod,
    "smod": _smod,
    "or": lambda b, x, y: b.or_(x, y),
    "and": lambda b, x, y: b.and_(x, y),
    "xor": lambda b, x, y: b.xor(x, y),
    "lsh": _shift("shl"),
    "rsh": _shift("lshr"),
    "arsh": _shift("ashr"),
    "mov": lambda b, x, y: y,
    "neg": lambda b, x, y: b.neg(x),
}

_UNSIGNED = {"jeq": "==", "jne": "!=", "jgt": ">", "jge": ">=", "jlt": "<", "jle": "<="}
_SIGNED = {"jsgt": ">", "jsge": ">=", "jslt": "<", "jsle": "<="}


def _ucmp(op: str) -> CondEmit:
    return lambda b, x, y: b.icmp_unsigned(op, x, y)


def _scmp(op: str) -> CondEmit:
    return lambda b, x, y: b.icmp_signed(op, x, y)


CONDS: dict[str, CondEmit] = {
    **{name: _ucmp(op) for name, op in _UNSIGNED.items()},
    **{name: _scmp(op) for name, op in _SIGNED.items()},
    "jset": lambda b, x, y: b.icmp_unsigned("!=", b.and_(x, y), _const(x, 0)),
}

# atomic operation -> (LLVM atomicrmw operation, fetches the old value into src)
ATOMICS: dict[str, tuple[str, bool]] = {
    "add": ("add", False), "or": ("or", False), "and": ("and", False), "xor": ("xor", False),
    "fetch_add": ("add", True), "fetch_or": ("or", True), "fetch_and": ("and", True),
    "fetch_xor": ("xor", True), "xchg": ("xchg", True),
}


def bswap(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Reverse the bytes of an i16/i32/i64 value."""
    return b.bswap(x)


def end(b: ir.IRBuilder, op: str, x: ir.Value) -> ir.Value:
    """Byte-order conversion of an already truncated value: ``le`` keeps it
    (this model is little-endian), ``be`` and ``bswap`` swap."""
    return x if op == "le" else bswap(b, x)


END_OPS = frozenset({"le", "be", "bswap"})
