"""The interpreter's translated form: a program as one Python function.

:func:`translate` writes the source of one Python function running a
program on a fixed context buffer (what :meth:`Interpreter.bind
<bpfvm.interp.interpreter.Interpreter.bind>` returns, the MM hooks' call):
registers are local variables; each basic block is a guarded section of
one loop (``if pc == start:``, so forward jumps fall through to their
block and backward ones go round the loop); the common ALU and 64-bit
jump operations are Python expressions, the others call their function in
:mod:`bpfvm.isa.semantics`.  What the reference loop enforces is enforced
the same way: every load and store makes the interpreter's check
(:attr:`AddressSpace.fast <bpfvm.interp.memory.AddressSpace.fast>`
inline, ``resolve`` otherwise, with the same fault); helpers are called as
the reference calls them (``vm.pc`` set, a helper's own failure turned
into a fault at its pc); the instruction budget is counted per block,
and a block the rest of the budget does not cover is handed to the
reference loop with the registers as they stand, which faults at the exact
instruction.  The bound function returns r0, or :data:`~bpfvm.engine.FAULT`
with the located fault kept for ``check()``, as the reference's does.

Not translated (the reference loop runs them): programs with local calls,
``callx``, atomics or legacy packet loads, a jump into the middle of
``lddw`` or a path running off the end, more than :data:`MAX_BLOCKS`
blocks (every guard is a comparison per pass), and interpreters observing
steps or loads.  A translated run leaves no step count or registers
behind (:attr:`Interpreter.steps`, :meth:`Interpreter.resume` describe
reference runs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bpfvm import isa
from bpfvm.engine import FAULT, located
from bpfvm.errors import VmFault
from bpfvm.helpers import HelperSpec
from bpfvm.interp.memory import HALF, LOW, SHIFT, UNPACK
from bpfvm.interp.ops import ZERO_STACK, lddw_constant
from bpfvm.isa import bits, semantics

if TYPE_CHECKING:
    from bpfvm.interp.interpreter import Interpreter

MAX_BLOCKS = 64
M64, M32 = bits.M64, bits.mask(32)
_K = isa.Kind
_SUPPORTED = frozenset({_K.ALU, _K.NEG, _K.MOV, _K.MOVSX, _K.END, _K.JA, _K.JCOND, _K.CALL,
                        _K.EXIT, _K.LDDW, _K.LDX, _K.ST, _K.STX})
_ENDS = frozenset({_K.JA, _K.JCOND, _K.EXIT})  # instructions that end a block

# ALU operations as expressions of the dst register {a} and the operand {b},
# by width: exactly semantics.ALU's results (tests compare them)
_ALU = {
    64: {"add": "({a} + {b}) & M64", "sub": "({a} - {b}) & M64", "mul": "({a} * {b}) & M64",
         "or": "{a} | {b}", "and": "{a} & {b}", "xor": "{a} ^ {b}",
         "lsh": "({a} << ({b} & 63)) & M64", "rsh": "{a} >> ({b} & 63)", "mov": "{b}"},
    32: {"add": "({a} + {b}) & M32", "sub": "({a} - {b}) & M32", "mul": "({a} * {b}) & M32",
         "or": "({a} | {b}) & M32", "and": "{a} & {b} & M32", "xor": "({a} ^ {b}) & M32",
         "lsh": "({a} << ({b} & 31)) & M32", "rsh": "({a} & M32) >> ({b} & 31)",
         "mov": "{b} & M32"},
}
# 64-bit conditions (operands are unsigned 64-bit values already)
_JUMP = {"jeq": "{a} == {b}", "jne": "{a} != {b}", "jgt": "{a} > {b}", "jge": "{a} >= {b}",
         "jlt": "{a} < {b}", "jle": "{a} <= {b}", "jset": "{a} & {b}"}


def _helper(vm: Interpreter, helper: HelperSpec, pc: int) -> Callable[..., int]:
    """A call of ``helper`` at ``pc`` with r1-r5, as the reference's ``_invoke``."""
    impl, name = helper.impl, helper.name
    if impl is None:
        def missing(*_: int) -> int:
            raise VmFault(pc, f"helper {name} has no implementation")
        return missing

    def call(a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
        vm.pc = pc
        try:
            return int(impl(vm, a1, a2, a3, a4, a5) or 0) & M64
        except VmFault:
            raise
        except Exception as exc:  # a helper's bug must not look like ours
            raise VmFault(pc, f"helper {name} failed: {type(exc).__name__}: {exc}") from exc
    return call


def _blocks(insns: list[Any]) -> list[tuple[int, int]] | None:
    """(start, end) of each basic block, or None when the program has
    something the translation leaves to the reference loop."""
    n = len(insns)
    starts, slots = {0}, set()
    pc = 0
    while pc < n:
        insn = insns[pc]
        spec = insn.spec
        if spec is None or spec.kind not in _SUPPORTED:
            return None
        slots.add(pc)
        nxt = pc + spec.slots
        if spec.kind in (_K.JA, _K.JCOND):
            starts.add(_target(pc, insn, spec))
        if spec.kind in _ENDS:
            starts.add(nxt)
        elif nxt >= n:
            return None  # would run off the end
        pc = nxt
    if insns[-1].spec is not None and insns[-1].spec.kind is _K.JCOND:
        return None  # not taken, it runs off the end
    starts.discard(n)
    if not starts <= slots:  # a jump out of the program or into the middle of lddw
        return None
    order = sorted(starts)
    if len(order) > MAX_BLOCKS:
        return None
    return list(zip(order, [*order[1:], n], strict=True))


def _target(pc: int, insn: Any, spec: isa.OpSpec) -> int:
    if spec.kind is _K.JA and spec.cls != isa.Cls.JMP:
        return pc + 1 + insn.imm
    return pc + 1 + insn.off


class _Writer:
    """The source of the function, and the names it refers to."""

    def __init__(self, vm: Interpreter, buf: bytearray) -> None:
        self.vm = vm
        self.ns: dict[str, Any] = {"M64": M64, "M32": M32, "VmFault": VmFault}
        self.lines: list[str] = []
        # objects whose buffer is known while the run lasts: base address -> name
        self.fixed = {vm._ctx_base: "buf", vm._tops[0] - vm._stacks[0].__len__(): "stack0"}
        self.known: dict[int, int] = {}  # registers holding a known value here

    def name(self, prefix: str, value: Any) -> str:
        key = f"{prefix}{len(self.ns)}"
        self.ns[key] = value
        return key

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def insn(self, pc: int, insn: Any, spec: isa.OpSpec, depth: int) -> None:
        known = dict(self.known)
        if spec.writes_dst:  # what the instruction writes (a constant is noted below)
            self.known.pop(insn.dst, None)
        if spec.kind is _K.CALL:
            self.known.pop(0, None)
        self._insn(pc, insn, spec, depth, known)

    def _insn(self, pc: int, insn: Any, spec: isa.OpSpec, depth: int,
              known: dict[int, int]) -> None:
        kind, d, s = spec.kind, insn.dst, insn.src
        b = f"r{s}" if spec.src_reg else str(semantics.operand(insn.imm))
        if kind in (_K.ALU, _K.MOV, _K.NEG, _K.MOVSX, _K.END):
            f = semantics.ALU[spec.key]
            if kind is _K.MOV and not spec.src_reg:
                self.known[d] = value = f(0, semantics.operand(insn.imm))
                self.emit(depth, f"r{d} = {value}")
            elif kind in (_K.ALU, _K.MOV) and spec.op in _ALU[spec.width]:
                self.emit(depth, f"r{d} = " + _ALU[spec.width][spec.op].format(a=f"r{d}", b=b))
            else:
                self.emit(depth, f"r{d} = {self.name('F', f)}(r{d}, {b})")
        elif kind is _K.LDDW:
            self.known[d] = value = lddw_constant(self.vm, pc, insn, spec)
            self.emit(depth, f"r{d} = {value}")
        elif kind is _K.CALL:
            helper = self.vm.helpers.get(insn.imm)
            assert helper is not None  # compile_handlers checked it
            self.emit(depth, f"r0 = {self.name('H', _helper(self.vm, helper, pc))}"
                             "(r1, r2, r3, r4, r5)")
        elif kind is _K.LDX:
            at = self.access(depth, pc, known.get(s), s, insn.off, spec.width, "read")
            unpack = f"{self.name('U', UNPACK[spec.width].unpack_from)}({at})[0]"
            if spec.signed:
                unpack = f"{self.name('X', semantics.extend)}({unpack}, {spec.width}, True)"
            self.emit(depth, f"r{d} = {unpack}")
        else:  # ST, STX
            m = bits.mask(spec.width * 8)
            value = f"r{s} & {m}" if kind is _K.STX else str(insn.imm & m)
            at = self.access(depth, pc, known.get(d), d, insn.off, spec.width, "write")
            self.emit(depth, f"{self.name('P', UNPACK[spec.width].pack_into)}({at}, {value})")

    def access(self, depth: int, pc: int, base: int | None, reg: int, off: int, size: int,
               what: str) -> str:
        """Check the access at ``reg + off`` as ``ldx`` checks it; returns the
        buffer and index to use.  ``base`` is the register's value when known
        here: within the context or the first stack frame the buffer is known
        (the context is this call's ``buf``, made the ctx object at entry)."""
        if base is not None:
            addr = (base + off) & M64
            i = (addr & LOW) - HALF
            obj = self.fixed.get(addr - i)
            if obj is not None:
                check = f"resolve({addr}, {size}, {what!r}, {pc})"
                if i < 0:
                    self.emit(depth, check)  # it faults
                else:
                    self.emit(depth, f"if len({obj}) < {i + size}:")
                    self.emit(depth + 1, check)  # it faults
                return f"{obj}, {i}"
        self.emit(depth, f"a = (r{reg} + {off}) & M64")
        self.emit(depth, f"b = get(a >> {SHIFT})")
        self.emit(depth, f"i = (a & {LOW}) - {HALF}")
        self.emit(depth, f"if b is None or i < 0 or i + {size} > len(b):")
        self.emit(depth + 1, f"b, i = resolve(a, {size}, {what!r}, {pc})")
        return "b, i"

    def end(self, pc: int, insn: Any, spec: isa.OpSpec, nxt: int, depth: int) -> None:
        kind = spec.kind
        if kind is _K.EXIT:
            self.emit(depth, "vm._fault = None")
            self.emit(depth, "return r0")
        elif kind is _K.JA:
            self.emit(depth, f"pc = {_target(pc, insn, spec)}")
        elif kind is _K.JCOND:
            a = f"r{insn.dst}"
            b = f"r{insn.src}" if spec.src_reg else str(semantics.operand(insn.imm))
            if spec.width == 64 and spec.op in _JUMP:
                cond = _JUMP[spec.op].format(a=a, b=b)
            else:
                cond = f"{self.name('J', semantics.JUMP[spec.key])}({a}, {b})"
            self.emit(depth, f"pc = {_target(pc, insn, spec)} if {cond} else {nxt}")
        else:
            self.insn(pc, insn, spec, depth)
            self.emit(depth, f"pc = {nxt}")


def translate(vm: Interpreter, buf: bytearray,
              reference: Callable[[], int]) -> Callable[[], int] | None:
    """A zero-argument function running ``vm``'s program on ``buf`` (see the
    module doc), or None when the program is left to the reference loop.
    ``reference`` is the reference loop's bound call: a program without
    loops counts no budget per block; it runs on ``reference`` when the
    budget is smaller than the program."""
    insns = vm.program.insns
    if vm.on_step is not None or not isinstance(buf, bytearray) or not insns:
        return None
    blocks = _blocks(insns)
    if blocks is None:
        return None
    size = sum(1 for pc, _ in _pcs(insns, 0, len(insns)))
    loops = any(spec.kind in (_K.JA, _K.JCOND) and _target(pc, insn, spec) <= pc
                for pc, (insn, spec) in _pcs(insns, 0, len(insns)))
    w = _Writer(vm, buf)
    regs = ", ".join(f"r{k}" for k in range(isa.NUM_REGS))
    uses_stack = any(i.dst == isa.FRAME_REG or i.src == isa.FRAME_REG for i in insns)
    w.ns.update(vm=vm, buf=buf, get=vm.space.fast.get, resolve=vm.space.resolve,
                replace=vm.space.replace, located=located, program=vm.program, FAULT=FAULT,
                ZERO=ZERO_STACK, stack=vm._stack_views[0], stack0=vm._stacks[0],
                handover=_handover(vm), reference=reference)
    w.emit(1, "def bound():")
    if not loops:
        w.emit(2, f"if vm.budget < {size}:")
        w.emit(3, "return reference()")
    w.emit(2, "if vm._ctx is not buf:")
    w.emit(3, "vm._ctx = buf")
    w.emit(3, f"replace({vm._ctx_base}, buf)")
    if uses_stack:
        w.emit(2, "stack[:] = ZERO")
    w.emit(2, "r0 = r3 = r4 = r5 = r6 = r7 = r8 = r9 = 0")
    w.emit(2, f"r1, r2, r10 = {vm._ctx_base}, len(buf), {vm._tops[0]}")
    if loops:
        w.emit(2, "left = total = vm.budget")
    w.emit(2, "pc = 0")
    w.emit(2, "try:")
    w.emit(3, "while True:" if loops else "if True:")
    targets = {_target(pc, insn, spec) for pc, (insn, spec) in _pcs(insns, 0, len(insns))
               if spec.kind in (_K.JA, _K.JCOND)}
    for start, stop in blocks:
        entry = start == 0 and 0 not in targets
        w.known = {1: vm._ctx_base, 10: vm._tops[0]} if entry else {}
        depth = 4
        if not entry or loops:  # else it runs once, first, unguarded
            w.emit(4, f"if pc == {start}:")
            depth = 5
        pcs = [pc for pc, _ in _pcs(insns, start, stop)]
        if loops:
            w.emit(depth, f"left -= {len(pcs)}")
            w.emit(depth, "if left < 0:")
            w.emit(depth + 1, f"return handover({start}, left + {len(pcs)}, total, [{regs}])")
        for pc in pcs[:-1]:
            w.insn(pc, insns[pc], insns[pc].spec, depth)
        last = pcs[-1]
        w.end(last, insns[last], insns[last].spec, stop, depth)
    w.emit(2, "except VmFault as fault:")
    w.emit(3, "vm._fault = located(program, fault)")
    w.emit(3, "return FAULT")
    w.emit(2, "raise AssertionError('a translated program ended without exit')")
    w.emit(1, "return bound")
    source = f"def make({', '.join(w.ns)}):\n" + "\n".join(w.lines)
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<translated {vm.program.name or 'program'}>", "exec"), namespace)
    return namespace["make"](**w.ns)  # type: ignore[no-any-return]


def _pcs(insns: list[Any], start: int, stop: int) -> list[tuple[int, tuple[Any, isa.OpSpec]]]:
    """(pc, (insn, spec)) of each instruction from ``start`` to ``stop``."""
    out = []
    pc = start
    while pc < stop:
        insn = insns[pc]
        out.append((pc, (insn, insn.spec)))
        pc += insn.spec.slots
    return out


def _handover(vm: Interpreter) -> Callable[[int, int, int, list[int]], int]:
    """Run the rest on the reference loop from ``pc`` with ``budget`` left of
    ``total`` and the registers ``regs``: it faults where the budget ends."""
    def handover(pc: int, budget: int, total: int, regs: list[int]) -> int:
        vm._r[:] = regs
        vm._calls.clear()
        vm._done = total - budget
        try:
            r0 = vm._loop(pc, budget)
        except VmFault as fault:
            vm._fault = fault
            return FAULT
        vm._fault = None
        return r0
    return handover
