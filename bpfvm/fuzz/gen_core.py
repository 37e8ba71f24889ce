"""Bookkeeping of a program under construction, for the fuzzer's generator.

:class:`GenCore` tracks what each register holds (an initialised scalar, a
pointer to some stack offset, the context in r6), which stack bytes are
initialised, which registers a nested block must not write, and the maps
declared so far; it emits the small pieces snippets are made of: context
loads, pointers to memory objects, bounded indexes (masked, reduced modulo,
or guarded by a compare), loads and stores, atomics.  Each piece may carry a
defect with the probability the generator was given (see :meth:`GenCore.bad`).
The snippets themselves are in :mod:`bpfvm.fuzz.generate`.
"""

from __future__ import annotations

import random

from bpfvm import isa
from bpfvm.fuzz.builder import EDGE_IMMS, HELPER_LOOKUP, Builder, Target, jcond_key
from bpfvm.program import MapDef

# Registers: r6 keeps the context, r7..r9 long-lived values, r0..r5 scratch.
CTX, LONG, SCRATCH = 6, (7, 8, 9), (0, 1, 2, 3, 4, 5)
MAX_DEPTH = 2
# defects drawn more or less often than the base rate (the others: 1.0)
DEFECT_WEIGHT = {"ctx-oob": 0.3, "ctx-field": 0.2, "no-null-check": 1.5, "null-path-deref": 1.5,
                 "loop-no-progress": 2.0, "loop-unbounded": 1.5, "store-pointer": 1.5,
                 "callee-reads-r6": 2.0, "read-clobbered": 1.5, "uninit-stack": 1.5,
                 "ctx-write-ro": 2.0, "ptr-alu": 0.4, "key-uninit": 0.6, "ret-range": 0.6,
                 "return-pointer": 0.6, "join-null-link": 1.5,
                 "atomic-spilled-pointer": 4.0, "ptr-diff-unbounded": 1.5,
                 "direct-value-offset": 1.5}


class GenCore:
    """Registers, stack and maps of one program under construction."""

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

    def map_def(self) -> int:
        if self.maps and self.rng.random() < 0.6:
            return self.rng.randrange(len(self.maps))
        kind = self.rng.choice(("array", "hash"))
        value = self.rng.choice((8, 16, 24, 64))
        entries = self.rng.choice((1, 4, 16))
        self.maps.append(MapDef(f"m{len(self.maps)}", kind, 4, value, entries))
        return len(self.maps) - 1

    def array_map(self) -> int:
        """An array map of at least two values (every in-range key finds one)."""
        have = [i for i, m in enumerate(self.maps) if m.kind == "array" and m.max_entries >= 2]
        if have and self.rng.random() < 0.7:
            return self.rng.choice(have)
        value = self.rng.choice((8, 16, 24, 64))
        self.maps.append(MapDef(f"m{len(self.maps)}", "array", 4, value, self.rng.choice((4, 16))))
        return len(self.maps) - 1

    def lookup(self, idx: int, key: int, key_off: int) -> None:
        """r0 = lookup(map idx, key) with the key a constant stored at fp+key_off."""
        self.b.emit("stw", 10, off=key_off, imm=key)
        if self.depth == 0:
            self.init |= set(range(key_off, key_off + 4))
        self.b.lddw(1, idx, isa.PSEUDO_MAP_FD)
        self.b.emit("mov64_x", 2, 10)
        self.b.emit("add64_k", 2, imm=key_off)
        self.b.emit("call", imm=HELPER_LOOKUP)
        self.kill_scratch()

    def long_regs(self, n: int) -> list[int] | None:
        """``n`` distinct long-lived registers not pinned, or None."""
        free = [r for r in LONG if r not in self.pinned]
        return self.rng.sample(free, n) if len(free) >= n else None

    def key_on_stack(self, off: int, size: int) -> None:
        if self.rng.random() < 0.5 and self.scalars:
            self.b.emit("stxw", 10, self.rng.choice(sorted(self.scalars)), off)
        else:
            self.b.emit("stw", 10, off=off, imm=self.rng.choice((0, 1, 2, 3, 15, 16, -1)))
        if size > 4:
            self.b.emit("stw", 10, off=off + 4, imm=0)
        if self.depth == 0:
            self.init |= set(range(off, off + size))

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
