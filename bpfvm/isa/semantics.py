"""The arithmetic of every ALU, jump, load-extension and atomic operation, written once.

Values are Python ints holding register contents as unsigned 64-bit numbers
(``0 <= v < 2**64``).  Every operation is a small pure function, and the
tables below map each :class:`~bpfvm.isa.OpSpec` of the ISA table to its
function, keyed by ``spec.key``:

* :data:`ALU` -- ALU, ALU64, MOV, NEG, MOVSX and END specs:
  ``f(dst, src) -> new dst`` (already zero-extended to 64 bits).  For the K
  forms pass :func:`operand` of the immediate as ``src``; unary operations
  (neg, movsx of the source, byte swaps) ignore what they do not use.
* :data:`JUMP` -- conditional jumps: ``f(dst, src) -> bool``.
* :data:`ATOMIC` -- atomic read-modify-write: ``f(old, src) -> new memory
  value`` (cmpxchg is :func:`cmpxchg`, which also needs r0).

Rules (RFC 9669): 32-bit operations use the low halves and zero-extend the
result; shift amounts are masked to the width; division by zero gives 0;
modulo by zero leaves dst (its low half, zero-extended, for 32-bit); signed
division truncates toward zero and the remainder takes the dividend's sign;
``INT_MIN s/ -1`` is ``INT_MIN`` and ``INT_MIN s% -1`` is 0; on this
little-endian model ``le`` truncates to its width, ``be`` and ``bswap`` swap.

This module computes values only; it neither decodes instructions nor
touches memory.  The interpreter calls these functions; the JIT is tested
against them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from bpfvm import isa
from bpfvm.isa.bits import M64, mask, sx

M8 = 0xFF
M16 = 0xFFFF

BinOp = Callable[[int, int], int]
Cond = Callable[[int, int], bool]


def operand(imm: int) -> int:
    """The source operand of a K-form instruction: the 32-bit immediate
    sign-extended to 64 bits (a 32-bit operation then uses its low half)."""
    return imm & M64


def extend(value: int, size: int, signed: bool) -> int:
    """A loaded ``size``-byte value as a register: zero- or sign-extended."""
    return sx(value, size * 8) & M64 if signed else value & mask(size * 8)


def _sdiv(x: int, y: int) -> int:
    """Signed division truncating toward zero (``y != 0``)."""
    q = abs(x) // abs(y)
    return -q if (x < 0) != (y < 0) else q


def _smod(x: int, y: int) -> int:
    """Truncated signed remainder: the sign of the dividend (``y != 0``)."""
    return x - y * _sdiv(x, y)


def _arith(bits: int) -> dict[str, BinOp]:
    """The two-operand ALU operations at width ``bits`` (32 or 64)."""
    m = mask(bits)
    sh = bits - 1

    def add(a: int, b: int) -> int:
        return (a + b) & m

    def sub(a: int, b: int) -> int:
        return (a - b) & m

    def mul(a: int, b: int) -> int:
        return (a * b) & m

    def div(a: int, b: int) -> int:
        b &= m
        return (a & m) // b if b else 0

    def sdiv(a: int, b: int) -> int:
        y = sx(b, bits)
        return _sdiv(sx(a, bits), y) & m if y else 0

    def mod(a: int, b: int) -> int:
        b &= m
        return (a & m) % b if b else a & m

    def smod(a: int, b: int) -> int:
        y = sx(b, bits)
        return _smod(sx(a, bits), y) & m if y else a & m

    def or_(a: int, b: int) -> int:
        return (a | b) & m

    def and_(a: int, b: int) -> int:
        return a & b & m

    def xor(a: int, b: int) -> int:
        return (a ^ b) & m

    def lsh(a: int, b: int) -> int:
        return (a << (b & sh)) & m

    def rsh(a: int, b: int) -> int:
        return (a & m) >> (b & sh)

    def arsh(a: int, b: int) -> int:
        return (sx(a, bits) >> (b & sh)) & m

    def mov(a: int, b: int) -> int:
        return b & m

    def neg(a: int, b: int) -> int:
        return -a & m

    return {"add": add, "sub": sub, "mul": mul, "div": div, "sdiv": sdiv, "mod": mod,
            "smod": smod, "or": or_, "and": and_, "xor": xor, "lsh": lsh, "rsh": rsh,
            "arsh": arsh, "mov": mov, "neg": neg}


def movsx(ext: int, bits: int) -> BinOp:
    """``dst = (s<ext>) src``, computed at width ``bits``, zero-extended."""
    m = mask(bits)

    def f(a: int, b: int) -> int:
        return sx(b, ext) & m

    return f


def swap(size: int) -> Callable[[int], int]:
    """Reverse the byte order of the low ``size`` bits (the rest is dropped)."""
    n = size // 8
    m = mask(size)

    def f(v: int) -> int:
        return int.from_bytes((v & m).to_bytes(n, "little"), "big")

    return f


def end(order: str, size: int) -> BinOp:
    """Byte-order conversion of dst to ``size`` bits: ``le`` (a no-op on this
    little-endian model but for truncation), ``be`` and ``bswap`` (swap)."""
    if order == "le":
        m = mask(size)
        return lambda a, b: a & m
    sw = swap(size)
    return lambda a, b: sw(a)


def _conds(bits: int) -> dict[str, Cond]:
    """The jump conditions comparing operands at width ``bits``."""
    if bits == 64:  # operands are already unsigned 64-bit: plain comparisons
        return {"jeq": operator.eq, "jne": operator.ne, "jgt": operator.gt,
                "jge": operator.ge, "jlt": operator.lt, "jle": operator.le,
                "jset": lambda a, b: a & b != 0,
                "jsgt": lambda a, b: sx(a, 64) > sx(b, 64),
                "jsge": lambda a, b: sx(a, 64) >= sx(b, 64),
                "jslt": lambda a, b: sx(a, 64) < sx(b, 64),
                "jsle": lambda a, b: sx(a, 64) <= sx(b, 64)}
    m = mask(bits)
    return {"jeq": lambda a, b: a & m == b & m,
            "jne": lambda a, b: a & m != b & m,
            "jgt": lambda a, b: a & m > b & m,
            "jge": lambda a, b: a & m >= b & m,
            "jlt": lambda a, b: a & m < b & m,
            "jle": lambda a, b: a & m <= b & m,
            "jset": lambda a, b: a & b & m != 0,
            "jsgt": lambda a, b: sx(a, bits) > sx(b, bits),
            "jsge": lambda a, b: sx(a, bits) >= sx(b, bits),
            "jslt": lambda a, b: sx(a, bits) < sx(b, bits),
            "jsle": lambda a, b: sx(a, bits) <= sx(b, bits)}


def cmpxchg(old: int, r0: int, src: int, bits: int) -> int:
    """The memory value after ``cmpxchg``: src if the old value equals r0's low
    ``bits`` bits, else unchanged.  r0 receives ``old`` either way."""
    m = mask(bits)
    return src & m if old == r0 & m else old


def _atomic_ops(bits: int) -> dict[str, BinOp]:
    arith = _arith(bits)
    ops = {name: arith[name] for name in ("add", "or", "and", "xor")}
    ops.update({f"fetch_{name}": f for name, f in list(ops.items())})
    ops["xchg"] = arith["mov"]
    return ops


def _build() -> tuple[dict[str, BinOp], dict[str, Cond], dict[str, BinOp]]:
    arith = {32: _arith(32), 64: _arith(64)}
    conds = {32: _conds(32), 64: _conds(64)}
    atomics = {4: _atomic_ops(32), 8: _atomic_ops(64)}
    K = isa.Kind
    # kind -> (table index, how to get the function of a spec of that kind)
    rules: dict[isa.Kind, tuple[int, Callable[[isa.OpSpec], Callable]]] = {
        K.ALU: (0, lambda s: arith[s.width][s.op]),
        K.MOV: (0, lambda s: arith[s.width][s.op]),
        K.NEG: (0, lambda s: arith[s.width][s.op]),
        K.MOVSX: (0, lambda s: movsx(s.match[1], s.width)),
        K.END: (0, lambda s: end(s.op, s.width)),
        K.JCOND: (1, lambda s: conds[s.width][s.op]),
        K.ATOMIC: (2, lambda s: atomics[s.width].get(s.op)),
    }
    tables: tuple[dict, dict, dict] = ({}, {}, {})
    for spec in isa.TABLE:
        if spec.kind in rules:
            index, get = rules[spec.kind]
            f = get(spec)
            if f is not None:  # cmpxchg has its own function
                tables[index][spec.key] = f
    return tables


ALU, JUMP, ATOMIC = _build()


def fetches(spec: isa.OpSpec) -> bool:
    """True when an atomic operation writes the old value back to ``src``."""
    return spec.op.startswith("fetch_") or spec.op == "xchg"
