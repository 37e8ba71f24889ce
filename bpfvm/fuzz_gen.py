"""Random program generator for the verifier fuzzer.

:func:`generate` draws a :class:`Case`: a :class:`~bpfvm.program.Program`
plus the :class:`Target` it runs under (the generic ``mem`` type with a
context buffer of N bytes, or one of the MM hooks of :mod:`bpfvm.hooks`).
Programs are assembled from snippets that real policies use and that
stress a verifier: context-field reads, stack spills and fills, map lookups
with and without null checks, bounded and data-bounded loops, pointer
arithmetic with masked or compared indexes, JMP32 refinements, local calls,
atomics and helper calls.  Each snippet is valid by construction, except
that with probability ``bad`` it carries one small defect (an off-by-one
bound, a missing null check, an uninitialised stack read, a 32-bit compare
guarding a 64-bit index...): a sound verifier rejects those, a broken one
lets them through and the oracles catch them at run time.

It knows nothing about the verifier or the engines; every opcode comes from
:data:`bpfvm.isa.BY_KEY`.  The same seed always gives the same case.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bpfvm import isa
from bpfvm.hooks import HOOKS
from bpfvm.hookspec import HookSpec
from bpfvm.insn import Insn
from bpfvm.insn import lddw as lddw_slots
from bpfvm.program import MapDef, Program

REGION_SIZE = 4096
MEM_SIZES = (8, 16, 32, 64, 128)
HELPER_LOOKUP, HELPER_UPDATE, HELPER_DELETE = 1, 2, 3
HELPER_KTIME, HELPER_TRACE, HELPER_PRANDOM = 5, 6, 7
EDGE_IMMS = (0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 255, 256, 0x7FFF, 0xFFFF, 0x7FFFFFFF,
             -0x80000000, -1, -2, -8, -64)
EDGE_WIDE = (0xFFFFFFFF, 0x100000000, 0x1_0000_0010, 0x7FFF_FFFF_FFFF_FFFF,
             0x8000_0000_0000_0000, 0xFFFF_FFFF_0000_0000)
# defects drawn more or less often than the base rate (the others: 1.0)
DEFECT_WEIGHT = {"ctx-oob": 0.3, "ctx-field": 0.3, "no-null-check": 3.0, "null-path-deref": 2.0,
                 "loop-no-progress": 3.0, "loop-unbounded": 2.0, "store-pointer": 3.0,
                 "callee-reads-r6": 3.0, "read-clobbered": 1.5, "uninit-stack": 2.0,
                 "ctx-write-ro": 2.0}
_ALU_KEYS = tuple(s.key for s in isa.TABLE if s.kind in (isa.Kind.ALU, isa.Kind.NEG,
                                                        isa.Kind.MOVSX, isa.Kind.END))
_SHIFTS = ("lsh", "rsh", "arsh")
_JCOND = tuple(s for s in isa.TABLE if s.kind is isa.Kind.JCOND)


@dataclass(frozen=True)
class Target:
    """What a program is verified and run as: a hook, or ``mem`` of ctx_size bytes."""

    hook: HookSpec | None
    ctx_size: int
    objects: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        return self.hook.name if self.hook else f"mem{self.ctx_size}"

    def object_sizes(self) -> dict[str, int]:
        return dict(self.objects)


@dataclass
class Case:
    """A generated program and its target."""

    program: Program
    target: Target
    notes: list[str] = field(default_factory=list)  # which snippets (and defects) it holds


def targets() -> list[Target]:
    """Every target the generator draws from."""
    out = [Target(None, n) for n in MEM_SIZES]
    for hook in HOOKS.values():
        objects = tuple((name, REGION_SIZE) for name in hook.objects)
        out.append(Target(hook, hook.ctx_size, objects))
    return out


def target_named(name: str) -> Target:
    for t in targets():
        if t.name == name:
            return t
    if name.startswith("mem") and name[3:].isdigit():
        return Target(None, int(name[3:]))
    raise KeyError(name)


def ins(key: str, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:
    """The instruction of spec ``key``, its discriminating field filled in."""
    spec = isa.BY_KEY[key]
    fields = {"src": src, "off": off, "imm": imm}
    if spec.match:
        fields[spec.match[0]] = spec.match[1]
    return Insn(spec.opcode, dst, fields["src"], fields["off"], fields["imm"])


class Builder:
    """Instructions with symbolic jump targets, resolved by :meth:`finish`."""

    def __init__(self) -> None:
        self.slots: list[Insn] = []
        self.fixups: list[tuple[int, str]] = []
        self.labels: dict[str, int] = {}
        self._count = 0

    def emit(self, key: str, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> None:
        self.slots.append(ins(key, dst, src, off, imm))

    def lddw(self, dst: int, value: int, src: int = isa.PSEUDO_IMM64) -> None:
        self.slots.extend(lddw_slots(dst, value, src))

    def new_label(self) -> str:
        self._count += 1
        return f"L{self._count}"

    def place(self, label: str) -> None:
        self.labels[label] = len(self.slots)

    def jump(self, key: str, label: str, dst: int = 0, src: int = 0, imm: int = 0) -> None:
        self.fixups.append((len(self.slots), label))
        self.slots.append(ins(key, dst, src, 0, imm))

    def finish(self) -> list[Insn]:
        out = list(self.slots)
        for pc, label in self.fixups:
            rel = self.labels[label] - pc - 1
            insn = out[pc]
            spec = insn.spec
            assert spec is not None
            if spec.kind is isa.Kind.CALL_LOCAL or (spec.kind is isa.Kind.JA and spec.width == 32):
                out[pc] = insn._replace(imm=rel)
            else:
                out[pc] = insn._replace(off=rel)
        return out


def jcond_key(op: str, bits: int = 64, reg: bool = False) -> str:
    return f"{op}{bits}_{'x' if reg else 'k'}"


# Registers: r6 keeps the context, r7..r9 long-lived values, r0..r5 scratch.
CTX, LONG, SCRATCH = 6, (7, 8, 9), (0, 1, 2, 3, 4, 5)
MAX_DEPTH = 2


class Gen:
    """One program under construction; see :func:`generate`."""

    def __init__(self, rng: random.Random, target: Target, bad: float, size: int) -> None:
        self.rng, self.t, self.bad_p, self.size = rng, target, bad, size
        self.b = Builder()
        self.notes: list[str] = []
        self.scalars: set[int] = set()  # registers holding an initialised scalar
        self.stack_ptrs: dict[int, int] = {}  # register -> frame offset it points at
        self.init: set[int] = set()  # initialised stack bytes (negative offsets)
        self.depth = 0
        self.pinned: set[int] = set()  # registers a nested body must not write
        self.ret_hint: int | None = None  # register r0 is made from at exit
        self.maps: list[MapDef] = []
        self.subs: list[tuple[str, int]] = []  # (label, kind) of local functions
        self.fp_size = 512

    # -- small utilities -------------------------------------------------
    def bad(self, what: str) -> bool:
        if self.rng.random() < self.bad_p * DEFECT_WEIGHT.get(what, 1.0):
            self.notes.append(f"bad:{what}")
            return True
        return False

    def imm(self) -> int:
        r = self.rng.random()
        if r < 0.6:
            return self.rng.choice(EDGE_IMMS)
        return self.rng.randint(-(1 << 31), (1 << 31) - 1) if r < 0.8 else self.rng.randint(0, 99)

    def scratch(self, avoid: tuple[int, ...] = ()) -> int:
        avoid = (*avoid, *self.pinned)
        free = [r for r in SCRATCH if r not in avoid and r not in self.stack_ptrs]
        return self.rng.choice(free or [r for r in SCRATCH if r not in avoid])

    def dst(self, avoid: tuple[int, ...] = ()) -> int:
        """A register to write: long-lived at top level, scratch inside blocks."""
        if self.depth == 0 and self.rng.random() < 0.5:
            free = [r for r in LONG if r not in avoid and r not in self.pinned]
            if free:
                return self.rng.choice(free)
        return self.scratch(avoid)

    def wrote(self, reg: int, scalar: bool = True) -> None:
        self.stack_ptrs.pop(reg, None)
        (self.scalars.add if scalar else self.scalars.discard)(reg)

    def hint(self, src: int) -> None:
        """Copy ``src`` into a pinned long-lived register that decides r0 at exit,
        so that a defect reading it shows in the result."""
        free = [r for r in LONG if r not in self.pinned]
        if not free:
            return
        self.ret_hint = self.rng.choice(free)
        self.b.emit("mov64_x", self.ret_hint, src)
        self.wrote(self.ret_hint)
        self.pinned.add(self.ret_hint)

    def kill_scratch(self) -> None:
        for r in SCRATCH:
            self.scalars.discard(r)
            self.stack_ptrs.pop(r, None)

    def scalar(self, avoid: tuple[int, ...] = ()) -> int:
        """A register holding a scalar, loading one from the context if needed."""
        have = [r for r in sorted(self.scalars) if r not in avoid and r not in self.pinned]
        if have and self.rng.random() < 0.7:
            return self.rng.choice(have)
        reg = self.dst(avoid)
        self.ctx_load(reg)
        return reg

    def ctx_load(self, reg: int) -> None:
        """reg = a context field (or a word of the mem buffer)."""
        if self.t.hook is None:
            size = self.rng.choice((1, 2, 4, 8) if self.t.ctx_size >= 8 else (1, 2, 4))
            off = self.rng.randrange(0, self.t.ctx_size - size + 1, size)
            if self.bad("ctx-oob"):
                off = self.t.ctx_size - size + self.rng.choice((1, size))
        else:
            fields = [f for f in self.t.hook.fields if f.pointer is None]
            fld = self.rng.choice(fields)
            off, size = fld.offset, fld.size
            if self.bad("ctx-field"):
                off, size = self.rng.choice(((off + 1, size), (off, max(1, size // 2)),
                                             (self.t.ctx_size, size)))
        key = f"ldx{isa.SIZE_SUFFIX[size]}"
        if size < 8 and self.rng.random() < 0.15:
            key = f"ldxs{isa.SIZE_SUFFIX[size]}"
        self.b.emit(key, reg, CTX, off)
        self.wrote(reg)

    # -- memory objects ----------------------------------------------------
    def object_base(self, reg: int) -> tuple[int, str] | None:
        """Point ``reg`` at some object with constant offset 0; returns (size, name).

        Map values need a lookup and a null check, so they are reached
        through :meth:`s_map_lookup` instead.
        """
        choices = ["stack"]
        if self.t.hook is None:
            choices.append("ctx")
        if self.t.objects:
            choices.append("region")
        what = self.rng.choice(choices)
        if what == "stack":
            size = self.rng.choice((8, 16, 32, 64))
            base = -self.rng.randrange(size, 257, 8)
            if not self.fill_stack(base, size):
                return None
            self.b.emit("mov64_x", reg, 10)
            self.b.emit("add64_k", reg, imm=base)
            self.wrote(reg, scalar=False)
            self.stack_ptrs[reg] = base
            return size, "stack"
        if what == "ctx":
            self.b.emit("mov64_x", reg, CTX)
            self.wrote(reg, scalar=False)
            return self.t.ctx_size, "ctx"
        name, size = self.t.objects[0]
        fld = self.t.hook.field_named(name) if self.t.hook else None
        assert fld is not None
        self.b.emit("ldxdw", reg, CTX, fld.offset)
        self.wrote(reg, scalar=False)
        return size, name

    def fill_stack(self, base: int, size: int) -> bool:
        """Make stack bytes [base, base+size) initialised (at top level only)."""
        need = set(range(base, base + size))
        if need <= self.init:
            return True
        if self.depth:
            return False
        for off in range(base, base + size, 8):
            self.b.emit("stdw", 10, off=off, imm=self.imm())
        self.init |= need
        return True

    def access(self, ptr: int, off: int, size: int, load: bool = True) -> None:
        """A load into scratch (or a store) of ``size`` bytes at ptr+off."""
        sfx = isa.SIZE_SUFFIX[size]
        r = self.rng.random()
        if load:
            reg = self.scratch((ptr,))
            self.b.emit(f"ldx{sfx}", reg, ptr, off)
            self.wrote(reg)
        elif r < 0.5 and self.scalars - {ptr}:
            self.b.emit(f"stx{sfx}", ptr, self.rng.choice(sorted(self.scalars - {ptr})), off)
        else:
            self.b.emit(f"st{sfx}", ptr, off=off, imm=self.imm())

    # -- snippets ----------------------------------------------------------
    def s_alu(self) -> None:
        key = self.rng.choice(_ALU_KEYS)
        spec = isa.BY_KEY[key]
        reg = self.scalar()
        if spec.kind is isa.Kind.ALU:
            if spec.src_reg:
                self.b.emit(key, reg, self.scalar())
            else:
                imm = self.imm()
                if spec.op in _SHIFTS:
                    imm = self.rng.randrange(spec.width)
                self.b.emit(key, reg, imm=imm)
        elif spec.kind is isa.Kind.MOVSX:
            self.b.emit(key, reg, self.scalar())
        else:
            self.b.emit(key, reg)
        self.wrote(reg)

    def s_mov(self) -> None:
        reg = self.dst()
        r = self.rng.random()
        if r < 0.3:
            self.b.lddw(reg, self.rng.choice(EDGE_WIDE))
        else:
            self.b.emit("mov64_k" if r < 0.7 else "mov32_k", reg, imm=self.imm())
        self.wrote(reg)

    def s_ctx(self) -> None:
        if self.t.hook is None or self.rng.random() < 0.7:
            self.ctx_load(self.dst())
            return
        writable = [f for f in self.t.hook.fields if f.writable]
        if self.bad("ctx-write-ro"):
            writable = [f for f in self.t.hook.fields if not f.writable and not f.pointer]
        elif not writable:
            self.ctx_load(self.dst())
            return
        fld = self.rng.choice(writable)
        self.b.emit(f"stx{isa.SIZE_SUFFIX[fld.size]}", CTX, self.scalar(), fld.offset)

    def s_const_access(self) -> None:
        ptr = self.scratch()
        got = self.object_base(ptr)
        if got is None:
            return
        size_obj, what = got
        if what != "stack" and size_obj >= 8 and self.bad("store-pointer"):
            self.b.emit("stxdw", ptr, self.rng.choice((10, CTX)), 0)
            return
        size = self.rng.choice([s for s in (1, 2, 4, 8) if s <= size_obj])
        off = self.rng.randrange(0, size_obj - size + 1, size)
        if self.bad("const-oob"):
            off = size_obj - size + self.rng.choice((1, size)) if self.rng.random() < 0.7 else -size
        self.access(ptr, off, size, load=self.rng.random() < 0.6)

    def index(self, limit: int) -> int:
        """A scalar register proven (by a guard or a mask) to be in [0, limit]."""
        reg = self.scalar()
        r = self.rng.random()
        if r < 0.4:
            mask = (1 << max(0, limit.bit_length() - 1)) - 1 if limit & (limit + 1) else limit
            if self.bad("mask-too-wide"):
                mask = mask * 2 + 1
            self.b.emit(self.rng.choice(("and64_k", "and32_k")), reg, imm=mask)
        elif r < 0.55:
            self.b.emit("mod64_k", reg, imm=limit + 1)
            if self.bad("mod-off-by-one"):
                self.b.emit("add64_k", reg, imm=1)
        else:
            return -1 - reg  # caller guards it with a compare
        self.wrote(reg)
        return reg

    def s_ptr_arith(self, ptr: int | None = None, size_obj: int | None = None) -> None:
        """ptr += bounded index; access through it."""
        if ptr is None:
            ptr = self.scratch()
            got = self.object_base(ptr)
            if got is None:
                return
            size_obj = got[0]
        assert size_obj is not None
        size = self.rng.choice([s for s in (1, 2, 4, 8) if s <= size_obj])
        off = self.rng.randrange(0, size_obj - size + 1)
        limit = size_obj - size - off
        pinned = ptr in self.pinned
        self.pinned.add(ptr)
        reg = self.index(limit)
        if not pinned:
            self.pinned.discard(ptr)
        end = None
        if reg < 0:
            reg = -1 - reg
            end = self.guard(reg, limit)
        if self.rng.random() < 0.2 and limit >= 7:
            self.b.emit("rsh64_k", reg, imm=3)
            self.b.emit("lsh64_k", reg, imm=3)
        if self.bad("ptr-alu"):
            key, imm = self.rng.choice((("add32_k", 0), ("lsh64_k", 1), ("mul64_k", 3),
                                        ("or64_k", 0x1000), ("rsh64_k", 1)))
            self.b.emit(key, ptr, imm=imm)
        self.b.emit("add64_x", ptr, reg)
        self.stack_ptrs.pop(ptr, None)
        self.access(ptr, off, size, load=self.rng.random() < 0.6)
        if end is not None:
            self.b.place(end)
            self.depth -= 1
            self.kill_scratch()

    def guard(self, reg: int, limit: int) -> str:
        """Branch away unless 0 <= reg <= limit; returns the end label (depth + 1)."""
        end = self.b.new_label()
        bits = 32 if self.rng.random() < 0.25 else 64
        k = limit
        if self.bad("bound-off-by-one"):
            k += 1
        form = self.rng.randrange(4)
        if bits == 32 and self.bad("jmp32-guards-64"):
            pass  # the guard below checks only the low half
        elif bits == 32:
            self.b.emit("mov32_x", reg, reg)  # upper half known zero
        if form == 0:
            self.b.jump(jcond_key("jgt", bits), end, reg, imm=k)
        elif form == 1:
            self.b.jump(jcond_key("jge", bits), end, reg, imm=k + 1)
        elif form == 2:
            skip = self.b.new_label()
            self.b.jump(jcond_key("jle", bits), skip, reg, imm=k)
            self.b.jump("ja", end)
            self.b.place(skip)
        else:
            self.b.jump(jcond_key("jsgt", bits), end, reg, imm=k)
            if not self.bad("signed-no-lower-bound"):
                self.b.jump(jcond_key("jslt", bits), end, reg, imm=0)
        self.depth += 1
        return end

    def s_spill(self) -> None:
        off = -8 * self.rng.randint(1, 32)
        regs = sorted(self.scalars | set(self.stack_ptrs) | {CTX})
        src = self.rng.choice(regs)
        self.b.emit("stxdw", 10, src, off)
        if self.depth == 0:
            self.init |= set(range(off, off + 8))
        if src != CTX and src not in self.stack_ptrs and not self.bad("scalar-as-pointer"):
            reg = self.scratch()
            self.b.emit("ldxdw", reg, 10, off)
            self.wrote(reg)
            return
        reg = self.scratch()
        if self.bad("clobber-spill"):
            self.b.emit("stw", 10, off=off, imm=self.imm())
        self.b.emit("ldxdw", reg, 10, off)
        if src == CTX:
            self.wrote(reg, scalar=False)
            if self.t.hook is None:
                self.access(reg, 0, 1)
            else:
                fld = next(f for f in self.t.hook.fields if f.pointer is None)
                self.access(reg, fld.offset, fld.size)
        else:
            self.wrote(reg, scalar=False)
            self.stack_ptrs[reg] = self.stack_ptrs.get(src, -8)
            base = self.stack_ptrs[reg]
            if set(range(base, base + 1)) <= self.init:
                self.b.emit("ldxb", self.scratch((reg,)), reg, 0)

    def s_stack_read(self) -> None:
        off = -8 * self.rng.randint(1, 64)
        if not set(range(off, off + 8)) <= self.init and not self.bad("uninit-stack"):
            if not self.fill_stack(off, 8):
                return
        reg = self.scratch()
        self.b.emit(self.rng.choice(("ldxdw", "ldxw", "ldxb")), reg, 10, off)
        self.wrote(reg)

    def map_def(self) -> int:
        if self.maps and self.rng.random() < 0.6:
            return self.rng.randrange(len(self.maps))
        kind = self.rng.choice(("array", "hash"))
        value = self.rng.choice((8, 16, 24, 64))
        entries = self.rng.choice((1, 4, 16))
        self.maps.append(MapDef(f"m{len(self.maps)}", kind, 4, value, entries))
        return len(self.maps) - 1

    def key_on_stack(self, off: int, size: int) -> None:
        if self.rng.random() < 0.5 and self.scalars:
            self.b.emit("stxw", 10, self.rng.choice(sorted(self.scalars)), off)
        else:
            self.b.emit("stw", 10, off=off, imm=self.rng.choice((0, 1, 2, 3, 15, 16, -1)))
        if size > 4:
            self.b.emit("stw", 10, off=off + 4, imm=0)
        if self.depth == 0:
            self.init |= set(range(off, off + size))

    def s_map_lookup(self) -> None:
        idx = self.map_def()
        m = self.maps[idx]
        key_off = -8 * self.rng.randint(1, 8)
        if self.bad("key-uninit"):
            key_off = -504
        else:
            self.key_on_stack(key_off, m.key_size)
        self.b.lddw(1, idx, isa.PSEUDO_MAP_FD)
        self.b.emit("mov64_x", 2, 10)
        self.b.emit("add64_k", 2, imm=key_off)
        self.b.emit("call", imm=HELPER_LOOKUP)
        self.kill_scratch()
        end = self.b.new_label()
        null_check = not self.bad("no-null-check")
        if null_check and self.bad("null-path-deref"):
            self.b.jump("jne64_k", end, 0, imm=0)
        elif null_check:
            self.b.jump("jeq64_k" if self.rng.random() < 0.8 else "jne64_k", end, 0, imm=0)
            if self.b.slots[-1].opcode == isa.BY_KEY["jne64_k"].opcode:
                # inverted: the non-null path is the branch target
                use = self.b.new_label()
                self.b.fixups[-1] = (self.b.fixups[-1][0], use)
                self.b.jump("ja", end)
                self.b.place(use)
        self.depth += 1
        ptr = 0
        if self.rng.random() < 0.3:
            self.b.emit("mov64_x", 3, 0)
            ptr = 3
        self.pinned |= {0, ptr}
        r = self.rng.random()
        if r < 0.4:
            self.s_ptr_arith(ptr, m.value_size)
        elif self.bad("store-pointer"):
            self.b.emit("stxdw", ptr, self.rng.choice((10, CTX)), 0)
        elif r < 0.7:
            size = self.rng.choice([s for s in (1, 2, 4, 8) if s <= m.value_size])
            off = self.rng.randrange(0, m.value_size - size + 1, size)
            if self.bad("value-oob"):
                off = m.value_size - size + 1
            self.access(ptr, off, size, load=self.rng.random() < 0.5)
        else:
            self.atomic(ptr, self.rng.randrange(0, m.value_size - 7, 8) if m.value_size >= 8
                        else 0)
        self.pinned -= {0, ptr}
        self.b.place(end)
        self.depth -= 1
        self.kill_scratch()

    def s_map_update(self) -> None:
        idx = self.map_def()
        m = self.maps[idx]
        key_off = -8 * self.rng.randint(1, 4)
        val_off = -(m.value_size + 64)
        self.key_on_stack(key_off, m.key_size)
        if not self.fill_stack(val_off, m.value_size):
            return
        delete = self.rng.random() < 0.3
        self.b.lddw(1, idx, isa.PSEUDO_MAP_FD)
        self.b.emit("mov64_x", 2, 10)
        self.b.emit("add64_k", 2, imm=key_off)
        if not delete:
            self.b.emit("mov64_x", 3, 10)
            small = self.bad("value-short")
            self.b.emit("add64_k", 3, imm=val_off + (8 if small else 0))
            self.b.emit("mov64_k", 4, imm=0)
        self.b.emit("call", imm=HELPER_DELETE if delete else HELPER_UPDATE)
        self.kill_scratch()
        self.wrote(0)

    def atomic(self, ptr: int, off: int) -> None:
        keys = [s.key for s in isa.TABLE if s.kind is isa.Kind.ATOMIC
                and not (ptr == 0 and s.op == "cmpxchg")]
        key = self.rng.choice(keys)
        spec = isa.BY_KEY[key]
        src = self.scalar((ptr, 0))
        if spec.op == "cmpxchg":
            self.b.emit("mov64_k", 0, imm=self.imm())
            self.wrote(0)
        self.b.emit(key, ptr, src, off)
        if spec.op.startswith("fetch") or spec.op == "xchg":
            self.wrote(src)
        if spec.op == "cmpxchg":
            self.wrote(0)

    def s_atomic(self) -> None:
        off = -8 * self.rng.randint(1, 16)
        if not self.bad("atomic-uninit") and not self.fill_stack(off, 8):
            return
        self.atomic(10, off)

    def s_loop(self) -> None:
        if self.depth:
            return
        free = [r for r in LONG if r not in self.pinned]
        if not free:
            return
        cnt = self.rng.choice(free)
        n = self.rng.choice((1, 2, 5, 16, 64))
        data_bound = self.rng.random() < 0.3
        if data_bound:
            self.ctx_load(cnt)
            out = self.b.new_label()
            if not self.bad("loop-unbounded"):
                self.b.jump("jgt64_k", out, cnt, imm=n)
            head = self.b.new_label()
            self.b.place(head)
            self.depth += 1
            self.pinned.add(cnt)
            self.body(1)
            self.b.jump("jeq64_k", out, cnt, imm=0)
            self.b.emit("sub64_k", cnt, imm=1)
            self.b.jump("ja", head)
            self.b.place(out)
        else:
            self.b.emit("mov64_k", cnt, imm=0)
            head = self.b.new_label()
            self.b.place(head)
            self.depth += 1
            self.pinned.add(cnt)
            self.body(1)
            step = 0 if self.bad("loop-no-progress") else self.rng.choice((1, 1, 2, 3))
            self.b.emit("add64_k", cnt, imm=step)
            self.b.jump(self.rng.choice(("jlt64_k", "jlt32_k", "jslt64_k")), head, cnt, imm=n)
        self.depth -= 1
        self.pinned.discard(cnt)
        self.kill_scratch()
        self.wrote(cnt)

    def s_diamond(self) -> None:
        a = self.scalar()
        spec = self.rng.choice(_JCOND)
        other, yes, end = self.b.new_label(), self.b.new_label(), self.b.new_label()
        if spec.src_reg:
            self.b.jump(spec.key, yes, a, self.scalar())
        else:
            self.b.jump(spec.key, yes, a, imm=self.imm())
        del other
        nested = self.depth == 0
        reg = self.rng.choice([r for r in LONG if r not in self.pinned]) if nested else \
            self.scratch((a,))
        self.b.emit("mov64_k", reg, imm=self.imm())
        self.depth += 1
        self.pinned.add(reg)
        if nested:
            self.body(1)
        self.b.jump("ja" if self.rng.random() < 0.8 else "gotol", end)
        self.b.place(yes)
        self.b.emit("mov64_x", reg, a)
        if nested:
            self.body(1)
        self.b.place(end)
        self.depth -= 1
        self.pinned.discard(reg)
        self.kill_scratch()
        self.wrote(reg)

    def s_jmp32(self) -> None:
        """32-bit guard of a value then 64-bit use (sound only if the high half is zero)."""
        ptr = self.scratch()
        got = self.object_base(ptr)
        if got is None:
            return
        reg = self.scratch((ptr,))
        self.pinned.add(ptr)
        if self.t.hook is None:
            size = 4 if not self.bad("jmp32-wide-src") else 8
            size = min(size, self.t.ctx_size)
            self.b.emit(f"ldx{isa.SIZE_SUFFIX[size]}", reg, CTX, 0)
        else:
            self.ctx_load(reg)
            if not self.bad("jmp32-no-zext"):
                self.b.emit("mov32_x", reg, reg)
        self.wrote(reg)
        end = self.b.new_label()
        self.b.jump(self.rng.choice(("jgt32_k", "jsgt32_k")), end, reg, imm=got[0] - 1)
        if self.b.slots[-1].opcode == isa.BY_KEY["jsgt32_k"].opcode:
            self.b.jump("jslt32_k", end, reg, imm=0)
        self.b.emit("add64_x", ptr, reg)
        self.stack_ptrs.pop(ptr, None)
        self.b.emit("ldxb", self.scratch((ptr,)), ptr, 0)
        self.b.place(end)
        self.pinned.discard(ptr)
        self.kill_scratch()

    def s_call(self) -> None:
        if len(self.subs) >= 2 or self.depth:
            return
        label = self.b.new_label()
        kind = self.rng.randrange(2)
        if kind == 0 and self.ret_hint is None and self.bad("callee-reads-r6"):
            kind = 2
        self.subs.append((label, kind))
        if kind == 1:  # pass a pointer to 16 initialised bytes of our stack
            self.fill_stack(-16, 16)
            self.b.emit("mov64_x", 1, 10)
            self.b.emit("add64_k", 1, imm=-16)
        else:
            self.b.emit("mov64_x", 1, self.scalar())
        self.b.jump("call_local", label)
        self.kill_scratch()
        self.wrote(0)
        if kind == 2:
            self.hint(0)

    def s_helper(self) -> None:
        r = self.rng.random()
        if r < 0.6:
            self.b.emit("call", imm=self.rng.choice((HELPER_KTIME, HELPER_PRANDOM)))
        else:
            if not self.fill_stack(-32, 16):
                return
            self.b.emit("mov64_x", 1, 10)
            self.b.emit("add64_k", 1, imm=-32)
            self.b.emit("mov64_k", 2, imm=17 if self.bad("trace-size") else 16)
            self.b.emit("call", imm=HELPER_TRACE)
        self.kill_scratch()
        self.wrote(0)
        if self.ret_hint is None and self.bad("read-clobbered"):
            self.hint(self.rng.randint(1, 5))

    SNIPPETS = (("s_alu", 6), ("s_mov", 2), ("s_ctx", 3), ("s_const_access", 3),
                ("s_ptr_arith", 4), ("s_spill", 2), ("s_stack_read", 1), ("s_map_lookup", 3),
                ("s_map_update", 1), ("s_atomic", 1), ("s_loop", 1), ("s_diamond", 2),
                ("s_jmp32", 2), ("s_call", 2), ("s_helper", 1))

    def body(self, n: int) -> None:
        names = [s for s, _ in self.SNIPPETS]
        weights = [w for _, w in self.SNIPPETS]
        for _ in range(n):
            name = self.rng.choices(names, weights)[0]
            if self.depth > MAX_DEPTH and name in ("s_loop", "s_diamond", "s_map_lookup"):
                name = "s_alu"
            self.notes.append(name[2:])
            getattr(self, name)()

    # -- whole programs --------------------------------------------------------
    def epilogue(self) -> None:
        hook = self.t.hook
        if self.ret_hint is not None and not (hook and hook.returns_pointer):
            self.b.emit("mov64_x", 0, self.ret_hint)
            if hook is not None:
                self.b.emit("and64_k", 0, imm=1)
            self.b.emit("exit")
            return
        if hook is None:
            if self.bad("return-pointer"):
                self.b.emit("mov64_x", 0, 10)
            elif self.bad("r0-uninit"):
                self.b.emit("mov64_k", 1, imm=0)
            elif self.scalars and self.rng.random() < 0.8:
                self.b.emit("mov64_x", 0, self.rng.choice(sorted(self.scalars)))
            else:
                self.b.emit("mov64_k", 0, imm=self.imm())
            self.b.emit("exit")
            return
        if hook.returns_pointer and self.rng.random() < 0.3:
            if self.bad("ret-scalar") and self.scalars:
                self.b.emit("mov64_x", 0, self.rng.choice(sorted(self.scalars)))
            else:
                self.b.emit("mov64_k", 0, imm=0)
            self.b.emit("exit")
            return
        if hook.returns_pointer:
            fld = hook.field_named(hook.returns_pointer)
            self.b.emit("ldxdw", 0, CTX, fld.offset)
            self.wrote(0, scalar=False)
            self.pinned.add(0)
            idx = self.index(REGION_SIZE - 8)
            if idx < 0:
                idx = -1 - idx
                self.b.emit("and64_k", idx, imm=REGION_SIZE - 8 if not self.bad("ret-oob")
                            else -1)
            self.b.emit("add64_x", 0, idx)
            self.b.emit("exit")
            return
        if self.scalars and self.rng.random() < 0.6:
            self.b.emit("mov64_x", 0, self.rng.choice(sorted(self.scalars)))
            if not self.bad("ret-range"):
                low = self.b.new_label()
                ok = self.b.new_label()
                self.b.jump("jsgt64_k", low, 0, imm=hook.ret_max)
                self.b.jump("jsge64_k", ok, 0, imm=hook.ret_min)
                self.b.place(low)
                self.b.emit("mov64_k", 0, imm=hook.ret_min)
                self.b.place(ok)
        else:
            span = hook.ret_max - hook.ret_min
            val = hook.ret_min + self.rng.randint(0, min(span, 1000))
            if self.bad("ret-range"):
                val = hook.ret_max + 1
            self.b.lddw(0, val)
        self.b.emit("exit")

    def subprogram(self, label: str, kind: int) -> None:
        self.b.place(label)
        self.scalars, self.stack_ptrs, self.init = set(), {}, set()
        if kind == 1:
            r = self.rng.random()
            off = self.rng.randrange(0, 16 if not self.bad("callee-oob") else 24, 8)
            if r < 0.6:
                self.b.emit("ldxdw", 0, 1, off)
            else:
                self.b.emit("stdw", 1, off=off, imm=self.imm())
                self.b.emit("mov64_k", 0, imm=self.imm())
        else:
            self.b.emit("mov64_x", 0, 1)
            if kind == 2:  # defect: r6 is not the callee's to read
                self.b.emit("add64_x", 0, 6)
                self.b.emit("xor64_k", 0, imm=self.imm())
            else:
                self.b.emit(self.rng.choice(("mul64_k", "xor64_k", "add32_k")), 0,
                            imm=self.imm())
        self.b.emit("exit")

    def program(self) -> Program:
        self.b.emit("mov64_x", CTX, 1)
        self.body(self.size)
        self.epilogue()
        for label, kind in list(self.subs):
            self.subprogram(label, kind)
        return Program(self.b.finish(), list(self.maps), self.t.hook.name if self.t.hook
                       else None, name="gen")


def generate(seed: int, *, bad: float = 0.06, size: int | None = None,
             target: Target | None = None) -> Case:
    """The case of ``seed``: same seed, same program."""
    rng = random.Random(seed)
    tgt = target or rng.choice(targets())
    n = size if size is not None else rng.randint(2, 8)
    gen = Gen(rng, tgt, bad, n)
    program = gen.program()
    return Case(program, tgt, gen.notes)
