"""The state of one program's IR under construction, and the primitives lowerings share.

A :class:`Lowering` owns the module and the function
``i64 bpf_main(ptr env, i64 r1, i64 r2)`` (``env``: the engine's environment
block of :mod:`bpfvm.jit.abi`; ``r1``/``r2``: the run's memory address and
length; the result is r0, or :data:`~bpfvm.jit.abi.FAULT_R0` after a fault
was recorded in ``env``).  Registers are ``alloca`` slots LLVM promotes to
SSA values (a register set in a block is stored once, when the block
branches away); every pc starting a basic block has its own IR block.  The
stack holds ``frames`` frames of 512 bytes ``stride`` bytes apart (one
frame unless the program makes local calls or runs checked).

The lowering functions themselves are in :mod:`bpfvm.jit.lower`,
:mod:`bpfvm.jit.calls` and :mod:`bpfvm.jit.checked`; this module only
holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from bpfvm import isa
from bpfvm.errors import BytecodeError
from bpfvm.isa.insn import Insn
from bpfvm.jit.abi import (
    FAULT_R0,
    FRAME_STRIDE,
    MAP_WORDS,
    MAX_FRAMES,
    STACK_SIZE,
    W_ARG0,
    W_ARG1,
    W_ARG2,
    W_FAULT,
    W_FAULT_PC,
    W_MAPS,
)
from bpfvm.program import Program

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
PTR = ir.PointerType()
MAIN_TYPE = ir.FunctionType(I64, [PTR, I64, I64])
MAIN_NAME = "bpf_main"


@dataclass(frozen=True, slots=True)
class MapGeom:
    """What code needs to know of a map: its layout in :mod:`bpfvm.maps`."""

    kind: str
    key_size: int
    value_size: int
    max_entries: int
    stride: int
    value_offset: int
    length: int  # bytes of storage
    capacity: int  # slots (hash maps; max_entries for arrays)


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything code generation depends on besides the instructions (part of
    the cache key).  ``slots``: helper ids called through a callback, in slot
    order; ``native``: ids lowered to native code; ``missing``: ids without an
    implementation; ``checked``: emit run-time checks and the budget."""

    maps: tuple[MapGeom, ...]
    slots: tuple[int, ...]
    native: frozenset[int]
    missing: frozenset[int]
    checked: bool

    @property
    def helper_ids(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.slots) | self.native | self.missing))


def walk(insns: list[Insn]) -> list[tuple[int, Insn, isa.OpSpec]]:
    """(pc, insn, spec) of every instruction, skipping lddw second slots."""
    out, pc = [], 0
    while pc < len(insns):
        insn = insns[pc]
        spec = insn.spec
        if spec is None:
            raise BytecodeError(pc, f"unknown opcode {insn.opcode:#04x}")
        out.append((pc, insn, spec))
        pc += spec.slots
    return out


def target(pc: int, insn: Insn, spec: isa.OpSpec) -> int:
    """Destination of a jump or local call."""
    if spec.kind is isa.Kind.CALL_LOCAL or (spec.kind is isa.Kind.JA
                                            and spec.cls == isa.Cls.JMP32):
        return pc + 1 + insn.imm
    return pc + 1 + insn.off


def leaders(insns: list[Insn]) -> set[int]:
    """The pcs starting a basic block (``len(insns)``: running off the end)."""
    out = {0, len(insns)}
    for pc, insn, spec in walk(insns):
        if spec.kind in (isa.Kind.JA, isa.Kind.JCOND, isa.Kind.CALL_LOCAL):
            out.update((target(pc, insn, spec), pc + 1))
        elif spec.kind is isa.Kind.EXIT:
            out.add(pc + 1)
    return {pc for pc in out if 0 <= pc <= len(insns)}


class _Builder(ir.IRBuilder):
    """An IR builder that saves the registers of the block before every branch."""

    def __init__(self, block: ir.Block, before_branch: Callable[[], None]) -> None:
        super().__init__(block)
        self._before_branch = before_branch

    def branch(self, target: ir.Block) -> ir.Instruction:
        self._before_branch()
        return super().branch(target)

    def cbranch(self, cond: ir.Value, truebr: ir.Block, falsebr: ir.Block) -> ir.Instruction:
        self._before_branch()
        return super().cbranch(cond, truebr, falsebr)

    def switch(self, value: ir.Value, default: ir.Block) -> ir.Instruction:
        self._before_branch()
        return super().switch(value, default)


class Lowering:
    """The IR under construction for one program (see module doc)."""

    def __init__(self, program: Program, layout: Layout) -> None:
        self.insns = program.insns
        self.code = walk(program.insns)
        self.layout = layout
        self.checked = layout.checked
        self.module = ir.Module(name=program.name)
        self.fn = ir.Function(self.module, MAIN_TYPE, name=MAIN_NAME)
        self.env, self.mem0, self.len0 = self.fn.args
        self._known_block: ir.Block | None = None
        self._known: dict[int, ir.Value] = {}
        self._dirty: set[int] = set()
        self.b = _Builder(self.fn.append_basic_block("entry"), self._flush)
        self.local_calls = any(s.kind is isa.Kind.CALL_LOCAL for _, _, s in self.code)
        self.calls_python = any(s.kind is isa.Kind.CALLX or (s.kind is isa.Kind.CALL
                                                            and i.imm in layout.slots)
                                for _, i, s in self.code)
        self.frames = MAX_FRAMES if (self.local_calls or self.checked) else 1
        self.stride = 2 * STACK_SIZE if self.checked else FRAME_STRIDE
        self.blocks = {pc: self.fn.append_basic_block(f"pc{pc}")
                       for pc in sorted(leaders(program.insns))}
        b = self.b
        self.regs = [b.alloca(I64, name=f"r{i}") for i in range(isa.NUM_REGS)]
        size = (self.frames - 1) * self.stride + STACK_SIZE
        self.stack = b.alloca(ir.ArrayType(I8, size), name="stack")
        self.stack.align = 16
        self.stack_base = b.ptrtoint(self.stack, I64)
        self.envi = b.ptrtoint(self.env, I64)
        self._invariant = self.module.add_metadata([])

    # -- registers and operands ---------------------------------------------
    def _values(self) -> dict[int, ir.Value]:
        """Register values known in the current block (it changes when the builder moves)."""
        if self.b.block is not self._known_block:
            assert not self._dirty or self._known_block.is_terminated, "unsaved registers"
            self._known_block = self.b.block
            self._known = {}
            self._dirty = set()
        return self._known

    def get(self, r: int) -> ir.Value:
        known = self._values()
        value = known.get(r)
        if value is None:
            value = known[r] = self.b.load(self.regs[r])
        return value

    def set(self, r: int, value: ir.Value) -> None:
        """Give ``r`` a new value; it is stored when the block branches away."""
        self._values()[r] = value
        self._dirty.add(r)

    def _flush(self) -> None:
        """Store the registers set in this block (the builder calls this before a branch)."""
        known = self._values()
        for r in sorted(self._dirty):
            ir.IRBuilder.store(self.b, known[r], self.regs[r])
        self._dirty = set()

    def operand(self, insn: Insn, spec: isa.OpSpec) -> ir.Value:
        """The source operand as i64: register, or the immediate sign-extended."""
        return self.get(insn.src) if spec.src_reg else I64(insn.imm)

    def narrow(self, value: ir.Value, width: int) -> ir.Value:
        return value if width == 64 else self.b.trunc(value, ir.IntType(width))

    def widen(self, value: ir.Value) -> ir.Value:
        return value if value.type.width == 64 else self.b.zext(value, I64)

    # -- the environment block -----------------------------------------------
    def env_word(self, index: int) -> ir.Value:
        return self.b.gep(self.env, [I64(index)], source_etype=I64)

    def load_env(self, index: int, invariant: bool = False) -> ir.Value:
        value = self.b.load(self.env_word(index), typ=I64)
        if invariant:
            value.set_metadata("invariant.load", self._invariant)
        return value

    def store_env(self, index: int, value: ir.Value) -> None:
        self.b.store(value, self.env_word(index))

    def map_storage(self, index: int) -> ir.Value:
        return self.load_env(W_MAPS + MAP_WORDS * index, invariant=True)

    def handle_offset(self, index: int) -> int:
        """A map handle minus the address of the environment block."""
        return 8 * (W_MAPS + MAP_WORDS * index)

    def map_handle(self, index: int) -> ir.Value:
        return self.b.add(self.envi, I64(self.handle_offset(index)))

    # -- memory ----------------------------------------------------------
    def pointer(self, addr: ir.Value) -> ir.Value:
        return self.b.inttoptr(addr, PTR)

    def frame_top(self, depth: ir.Value) -> ir.Value:
        """r10 of frame ``depth``."""
        b = self.b
        return b.add(self.stack_base, b.add(b.mul(depth, I64(self.stride)), I64(STACK_SIZE)))

    def zero_frame(self, depth: ir.Value) -> None:
        """Zero the stack of frame ``depth`` (frames are zeroed when entered)."""
        b = self.b
        start = b.gep(self.stack, [I64(0), b.mul(depth, I64(self.stride))])
        memset = self.module.declare_intrinsic("llvm.memset", [PTR, I64])
        b.call(memset, [start, I8(0), I64(STACK_SIZE), I1(0)])

    # -- control ---------------------------------------------------------
    def jump(self, pc: int) -> None:
        self.b.branch(self.blocks[pc])

    def new_block(self, name: str) -> ir.Block:
        return self.fn.append_basic_block(name)

    def fault(self, pc: int | ir.Value, code: int, *args: ir.Value) -> None:
        """Record a fault and return :data:`FAULT_R0` (ends the current block)."""
        self.store_env(W_FAULT, I64(code))
        self.store_env(W_FAULT_PC, I64(pc) if isinstance(pc, int) else pc)
        for word, value in zip((W_ARG0, W_ARG1, W_ARG2), args, strict=False):
            self.store_env(word, value)
        self.b.ret(I64(FAULT_R0))

    def fault_if(self, pc: int, cond: ir.Value, code: int, *args: ir.Value) -> None:
        """Fault when ``cond`` holds; continue in a new block otherwise."""
        bad, ok = self.new_block(f"fault{pc}"), self.new_block(f"ok{pc}")
        self.b.cbranch(cond, bad, ok)
        self.b.position_at_end(bad)
        self.fault(pc, code, *args)
        self.b.position_at_end(ok)
