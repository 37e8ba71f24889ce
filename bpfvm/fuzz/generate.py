"""The snippets the fuzzer's generator assembles programs from.

:class:`Gen` adds to :class:`~bpfvm.fuzz.gen_core.GenCore` one method per
snippet (``s_*``): ALU operations, context reads and writes, constant-offset
and index-based accesses to the stack, map values, the region and the
``mem`` buffer, spills and fills, map lookups with their null checks, map
updates, atomics, bounded and data-bounded loops, if/else diamonds, JMP32
guards followed by 64-bit use, local calls and helper calls; then the
epilogue that sets r0 within the hook's contract and the local functions.
"""

from __future__ import annotations

import random

from bpfvm import isa
from bpfvm.fuzz.builder import (
    EDGE_WIDE,
    HELPER_DELETE,
    HELPER_KTIME,
    HELPER_LOOKUP,
    HELPER_PRANDOM,
    HELPER_TRACE,
    HELPER_UPDATE,
    REGION_SIZE,
    TARGETS,
    Case,
    Target,
)
from bpfvm.fuzz.gen_core import CTX, LONG, MAX_DEPTH, GenCore
from bpfvm.program import Program

_ALU_KEYS = tuple(s.key for s in isa.TABLE if s.kind in (isa.Kind.ALU, isa.Kind.NEG,
                                                        isa.Kind.MOVSX, isa.Kind.END))
_SHIFTS = ("lsh", "rsh", "arsh")
_JCOND = tuple(s for s in isa.TABLE if s.kind is isa.Kind.JCOND)


class Gen(GenCore):
    """One program under construction; see :func:`bpfvm.fuzz.builder.generate`."""

    def s_alu(self) -> None:
        key = self.rng.choice(_ALU_KEYS)
        spec = isa.BY_KEY[key]
        reg = self.scalar()
        if spec.kind is isa.Kind.ALU:
            if spec.src_reg and spec.op in _SHIFTS and self.rng.random() < 0.6:
                self.masked_shift(key, spec, reg)
            elif spec.src_reg:
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

    def masked_shift(self, key: str, spec: isa.OpSpec, reg: int) -> None:
        """``reg OP= amount & mask``: a shift the verifier can bound (the
        kernel's idiom), often of a small constant, by amounts that may pass
        the other width (32..63 for a 64-bit shift)."""
        amount = self.scalar(avoid=(reg,))
        w = spec.width
        self.b.emit(f"and{w}_k", amount, imm=self.rng.choice((w - 1, 31, 15, 7, 48)))
        if self.rng.random() < 0.5:
            self.b.emit("mov64_k", reg, imm=self.rng.choice((1, 3, 0xFF, -1, 0x8001)))
        self.b.emit(key, reg, amount)
        self.wrote(amount)

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

    def s_lookup_join(self) -> None:
        """A lookup result, copied, joined with 0 by an if/else diamond (in a
        register or a stack slot) and null-checked (perhaps through a further
        copy).  Where the check finds 0,
        the first copy is still the lookup result on one path: with the defect,
        that copy is used as the constant 0."""
        regs = self.long_regs(2) if self.depth == 0 else None
        if regs is None:
            return
        p, j = regs
        idx = self.array_map()
        m = self.maps[idx]
        self.lookup(idx, self.rng.randrange(m.max_entries), -8 * self.rng.randint(1, 8))
        self.b.emit("mov64_x", p, 0)
        self.wrote(p, scalar=False)
        self.pinned |= {p, j}
        cond = self.scalar((0, p, j))
        yes, end = self.b.new_label(), self.b.new_label()
        key, imm = self.rng.choice((("jset64_k", 1), ("jgt64_k", 0x7F), ("jset32_k", 2),
                                    ("jslt64_k", 0), ("jeq64_k", 0)))
        self.b.jump(key, yes, cond, imm=imm)
        src = self.rng.choice((0, p))
        sides = [("mov64_k", 0), ("mov64_x", src)]
        self.rng.shuffle(sides)
        # joined in a stack slot rather than a register: both sides spill, the
        # join point fills (the verifier keeps register kinds apart, not slots)
        slot = -8 * self.rng.randint(5, 16) if self.rng.random() < 0.5 else None
        for n, (key, val) in enumerate(sides):
            if n:
                self.b.jump("ja", end)
                self.b.place(yes)
            self.b.emit(key, j, val if key == "mov64_x" else 0)
            if slot is not None:
                self.b.emit("stxdw", 10, j, slot)
        self.b.place(end)
        if slot is not None:
            self.b.emit("ldxdw", j, 10, slot)
        self.wrote(j, scalar=False)
        check = j
        if self.rng.random() < 0.5:
            check = self.scratch((0, p, j))
            self.b.emit("mov64_x", check, j)
        nonnull, out = self.b.new_label(), self.b.new_label()
        self.b.jump("jne64_k", nonnull, check, imm=0)
        self.depth += 1
        if self.bad("join-null-link"):  # p taken as 0 here; it may be the lookup result
            q = self.scratch((0, p, j, check))
            self.b.emit("mov64_x", q, 10)
            self.b.emit("add64_x", q, p)
            self.b.emit("stb", q, off=-8, imm=self.imm())
        elif self.rng.random() < 0.5:
            self.b.jump("jeq64_k", out, p, imm=0)
            self.access(p, 0, 1, load=self.rng.random() < 0.5)
        self.b.jump("ja", out)
        self.b.place(nonnull)
        self.access(check, self.rng.randrange(m.value_size), 1, load=self.rng.random() < 0.6)
        self.b.place(out)
        self.depth -= 1
        self.pinned -= {p, j}
        self.kill_scratch()

    _ATOMICS = tuple(s.key for s in isa.TABLE if s.kind is isa.Kind.ATOMIC)

    def s_spill_atomic(self) -> None:
        """A pointer of some kind (context, stack, map value, map handle,
        region) spilled, then filled and used.  With the defect, an atomic
        operation (any op, 32 or 64 bit, perhaps through a copy of r10) on
        the slot in between."""
        kinds = ["ctx", "stack", "map", "value"] + (["region"] if self.t.objects else [])
        kind = self.rng.choice(kinds)
        reg = self.scratch()
        end = None
        if kind == "ctx":
            self.b.emit("mov64_x", reg, CTX)
        elif kind == "stack":
            if not self.fill_stack(-256, 8):
                return
            self.b.emit("mov64_x", reg, 10)
            self.b.emit("add64_k", reg, imm=-256)
        elif kind == "map":
            self.b.lddw(reg, self.array_map(), isa.PSEUDO_MAP_FD)
        elif kind == "region":
            name = self.t.objects[0][0]
            fld = self.t.hook.field_named(name) if self.t.hook else None
            assert fld is not None
            self.b.emit("ldxdw", reg, CTX, fld.offset)
        else:
            if self.depth > MAX_DEPTH:
                return
            self.lookup(self.array_map(), 0, -8 * self.rng.randint(1, 4))
            end = self.b.new_label()
            self.b.jump("jeq64_k", end, 0, imm=0)
            self.depth += 1
            reg = 0
        self.wrote(reg, scalar=False)
        off = -8 * self.rng.randint(5, 16)
        self.b.emit("stxdw", 10, reg, off)
        if self.bad("atomic-spilled-pointer"):
            key = self.rng.choice(self._ATOMICS)
            spec = isa.BY_KEY[key]
            src = self.scratch((reg, 0))
            self.b.emit("mov64_k", src, imm=self.rng.choice((8, 64, 4096, 1 << 20, -1)))
            if spec.op == "cmpxchg":
                self.b.emit("mov64_k", 0, imm=self.imm())
            base, at = 10, off
            if self.rng.random() < 0.3:
                base = self.scratch((reg, 0, src))
                self.b.emit("mov64_x", base, 10)
                self.b.emit("add64_k", base, imm=off)
                at = 0
            self.b.emit(key, base, src, at)
            if spec.op.startswith("fetch") or spec.op == "xchg":
                self.wrote(src)  # perhaps the pointer, now typed as a scalar
        fill = self.scratch((0,) if kind == "value" else ())
        self.b.emit("ldxdw", fill, 10, off)
        self.wrote(fill, scalar=False)
        if kind == "map":
            key_off = -8 * self.rng.randint(1, 4)
            self.b.emit("stw", 10, off=key_off, imm=0)
            self.b.emit("mov64_x", 1, fill)
            self.b.emit("mov64_x", 2, 10)
            self.b.emit("add64_k", 2, imm=key_off)
            self.b.emit("call", imm=HELPER_LOOKUP)
            self.kill_scratch()
            self.wrote(0, scalar=False)
        elif kind == "ctx":
            if self.t.hook is None:
                self.access(fill, 0, 1)
            else:
                fld = next(f for f in self.t.hook.fields if f.pointer is None)
                self.access(fill, fld.offset, fld.size)
        else:
            self.access(fill, 0, 1, load=self.rng.random() < 0.5)
        if end is not None:
            self.b.place(end)
            self.depth -= 1
            self.kill_scratch()

    def s_ptr_diff(self) -> None:
        """The difference of two lookups' results in one array map (keys
        that differ, mostly), bounded and used as a stack offset.  With the
        defect, it is used unbounded (only exact if both are the same value)."""
        regs = self.long_regs(1) if self.depth == 0 else None
        if regs is None:
            return
        a = regs[0]
        idx = self.array_map()
        m = self.maps[idx]
        k1 = self.rng.randrange(1, m.max_entries)
        k2 = self.rng.randrange(k1) if self.rng.random() < 0.9 else k1
        outer, inner = self.b.new_label(), self.b.new_label()
        self.lookup(idx, k1, -8)
        self.b.jump("jeq64_k", outer, 0, imm=0)
        self.depth += 1
        self.b.emit("mov64_x", a, 0)
        self.wrote(a, scalar=False)
        self.pinned.add(a)
        self.lookup(idx, k2, -16)
        self.b.jump("jeq64_k", inner, 0, imm=0)
        d = self.scratch((0, a))
        self.b.emit("mov64_x", d, a)
        self.b.emit("sub64_x", d, 0)  # (k1 - k2) * value size at run time
        q = self.scratch((0, a, d))
        base = -64
        if self.bad("ptr-diff-unbounded"):
            base = -1
        else:
            self.b.emit(self.rng.choice(("and64_k", "mod64_k")), d, imm=63)
        self.b.emit("mov64_x", q, 10)
        self.b.emit("add64_k", q, imm=base)
        self.b.emit("add64_x", q, d)
        self.b.emit("stb", q, off=0, imm=self.imm())
        self.b.place(inner)
        self.b.place(outer)
        self.depth -= 1
        self.pinned.discard(a)
        self.kill_scratch()

    def s_direct_value(self) -> None:
        """``lddw`` of a map value (an array's first) at an offset, then an
        access inside the value.  With the defect the offset is negative
        (added back before the access) or past the value's end."""
        idx = self.array_map()
        vs = self.maps[idx].value_size
        reg = self.scratch()
        off = self.rng.choice((0, 0, vs - 1, vs // 2, self.rng.randrange(vs)))
        back = 0
        if self.bad("direct-value-offset"):
            off = self.rng.choice((-8, -1, -vs, -4096, vs, vs + 8, 1 << 31))
            back = -off if off < 0 else 0
        self.b.lddw(reg, idx | ((off & 0xFFFFFFFF) << 32), isa.PSEUDO_MAP_VALUE)
        self.wrote(reg, scalar=False)
        if back:
            self.b.emit("add64_k", reg, imm=back)
            off = 0
        size = self.rng.choice([s for s in (1, 2, 4, 8) if s <= max(1, vs - off)])
        self.access(reg, 0, size, load=self.rng.random() < 0.6)
        self.wrote(reg, scalar=False)

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
                ("s_jmp32", 2), ("s_call", 2), ("s_helper", 1), ("s_lookup_join", 1),
                ("s_spill_atomic", 2), ("s_ptr_diff", 1), ("s_direct_value", 1))

    def body(self, n: int) -> None:
        names = [s for s, _ in self.SNIPPETS]
        weights = [w for _, w in self.SNIPPETS]
        for _ in range(n):
            name = self.rng.choices(names, weights)[0]
            if self.depth > MAX_DEPTH and name in ("s_loop", "s_diamond", "s_map_lookup",
                                                   "s_lookup_join", "s_ptr_diff"):
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
    tgt = target or rng.choice(TARGETS)
    n = size if size is not None else rng.randint(2, 8)
    gen = Gen(rng, tgt, bad, n)
    program = gen.program()
    return Case(program, tgt, gen.notes)
