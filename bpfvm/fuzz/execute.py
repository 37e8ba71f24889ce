"""Running accepted programs for the fuzzer's oracles: inputs, probes, results.

:func:`draw_input` draws a concrete input for a case (context fields, map
contents, region bytes) biased to the program's own constants and their
neighbours (:func:`value_pool`).  A :class:`Probe` instruments an
:class:`~bpfvm.interp.interpreter.Interpreter`: it puts garbage where the verifier says
nothing may be read (the stack at entry, registers a call clobbers or a
callee must not see) and checks the verifier's range claims before every
instruction (:mod:`bpfvm.fuzz.claims`; a pc run :data:`HOT` times gets a
check compiled for it).  A :class:`Executor` binds an engine to a case:
it prepares each run (maps, environment, the region and its pointer in the
context), collects a comparable :class:`RunResult` and says what a run did
that breaks the hook's contract.  The oracles' verdicts are drawn in
:mod:`bpfvm.fuzz.oracles`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bpfvm import isa
from bpfvm.fuzz.builder import EDGE_WIDE, REGION_SIZE, Case
from bpfvm.fuzz.claims import breaks, range_checker, specialized
from bpfvm.interp.interpreter import Interpreter
from bpfvm.isa.bits import s64
from bpfvm.vmenv import VmEnv

M64 = (1 << 64) - 1
RETURNED_SIZE = 8  # a returned PTE pointer must address this many bytes
HOT = 256  # executions of a pc before its claims get a check of their own
STACK_SLACK = 512  # how far outside an object a leaked address may point


# -- concrete inputs ------------------------------------------------------------

_POOL = frozenset({0, 1, 2, 7, 8, 63, 64, 255, 256, *EDGE_WIDE})


def value_pool(case: Case) -> list[int]:
    """Values worth feeding: the program's constants, their neighbours, edges."""
    pool = set(_POOL)
    call = isa.Kind.CALL
    for k in {insn.imm for insn in case.program.insns if (spec := insn.spec) is not None
              and "imm" in spec.uses and spec.kind is not call}:
        pool.update((k, k - 1, k + 1, k + 2, -k, k + (1 << 32), k | (1 << 63)))
    for m in case.program.maps:
        pool.update((m.value_size, m.value_size - 1, m.max_entries, m.max_entries - 1))
    return sorted(v & M64 for v in pool)


@dataclass
class Input:
    ctx: bytearray
    region: bytearray | None
    entries: list[list[tuple[bytes, bytes]]]  # per map
    env_seed: int
    garbage: int

    def describe(self) -> str:
        maps = "; ".join(f"map{i}: {len(e)} entries" for i, e in enumerate(self.entries))
        return f"ctx={self.ctx.hex()}" + (f" {maps}" if maps else "")


def draw_input(case: Case, rng: random.Random, pool: list[int]) -> Input:
    t = case.target

    def value(size: int) -> int:
        v = rng.choice(pool) if rng.random() < 0.8 else rng.getrandbits(64)
        return v & ((1 << (8 * size)) - 1)

    ctx = bytearray(t.ctx_size)
    if t.hook is None:
        for off in range(0, t.ctx_size, 4):
            size = min(rng.choice((1, 4, 8)), t.ctx_size - off)
            ctx[off:off + size] = value(size).to_bytes(size, "little")
    else:
        for f in t.hook.fields:
            v = REGION_SIZE if f.name == "region_size" else value(f.size)
            ctx[f.offset:f.offset + f.size] = v.to_bytes(f.size, "little")
    region = bytearray(rng.randbytes(64)) * (REGION_SIZE // 64) if t.objects else None
    entries: list[list[tuple[bytes, bytes]]] = []
    empty = rng.random() < 0.25  # lookups fail: null checks matter
    for m in case.program.maps:
        if empty:
            entries.append([])
            continue
        keys = {rng.choice(pool) & 0xFFFFFFFF for _ in range(rng.randint(0, m.max_entries))}
        if m.kind == "array":
            keys = {k for k in keys if k < m.max_entries}
        entries.append([(k.to_bytes(m.key_size, "little"),
                         rng.randbytes(m.value_size))
                        for k in sorted(keys)][:m.max_entries])
    return Input(ctx, region, entries, rng.getrandbits(32), rng.getrandbits(64))


# -- the engines, instrumented --------------------------------------------------

class Probe:
    """Instruments an :class:`Interpreter`: garbage where reads are forbidden,
    and the verifier's claims checked before each instruction.

    Two handler lists are made once: *checking* (garbage and claims) and
    *lean* (garbage at calls only, for the long tail of a run: see
    :meth:`checking`).  The probe installs the checking one."""

    def __init__(self, vm: Interpreter, facts: Any) -> None:
        self.vm = vm
        self.garbage = 0
        self.fresh = False
        self.violation: str | None = None
        self.checker = range_checker(facts)
        quiet = getattr(self.checker, "quiet", frozenset())
        raw = vm._handlers
        full, lean = list(raw), list(raw)
        self._full, self._lean = full, lean
        pc = 0
        insns = vm.program.insns
        while pc < len(insns):
            spec = insns[pc].spec
            if spec is None:
                break
            call = spec.kind in (isa.Kind.CALL, isa.Kind.CALL_LOCAL)
            if call:
                lean[pc] = self._after_call(raw[pc], spec.kind)
            if pc == 0 or call or (self.checker is not None and pc not in quiet):
                full[pc] = self._wrap(pc, lean[pc])
            pc += spec.slots
        vm._handlers = full

    def checking(self, on: bool) -> None:
        """Check claims (and fill the stack at entry) from now on, or not."""
        self.vm._handlers = self._full if on else self._lean

    def release(self) -> None:
        """Drop the handlers, the engine's included (they refer back to the
        engine and the probe: left alone, every case would leave reference
        cycles to the garbage collector).  The engine cannot run after this."""
        self._full.clear()
        self._lean.clear()
        self.vm._handlers = []

    def _fill(self, buf: bytearray, salt: int) -> None:
        if self.garbage:
            pattern = ((self.garbage ^ salt) & M64).to_bytes(8, "little")
            buf[:] = pattern * (len(buf) // 8)

    def _after_call(self, inner: Callable[[], int], kind: isa.Kind) -> Callable[[], int]:
        """``inner``, then garbage where the call leaves nothing readable."""
        vm, r, g = self.vm, self.vm._r, self

        if kind is isa.Kind.CALL:
            def call() -> int:
                nxt = inner()
                if g.garbage:
                    for reg in (1, 2, 3, 4, 5):
                        r[reg] = (g.garbage + reg) & M64
                return nxt
            return call

        def call_local() -> int:
            nxt = inner()
            if g.garbage:
                g._fill(vm._stacks[len(vm._calls)], len(vm._calls))
                for reg in (6, 7, 8, 9):
                    r[reg] = (g.garbage ^ reg) & M64
            return nxt
        return call_local

    def _wrap(self, pc: int, inner: Callable[[], int]) -> Callable[[], int]:
        vm, r, checker = self.vm, self.vm._r, self.checker
        g = self
        claims = getattr(checker, "claims", {}).get(pc)
        if pc == 0 or checker is None or claims is None:
            def step() -> int:
                if pc == 0 and g.fresh:
                    g.fresh = False
                    if g.garbage:
                        g._fill(vm._stacks[0], 0)
                        for reg in (0, 3, 4, 5, 6, 7, 8, 9):
                            r[reg] = (g.garbage * (reg + 1)) & M64
                if checker is not None and g.violation is None:
                    g.violation = checker(pc, r)
                return inner()
            return step
        if not claims:
            return inner
        full = checker.full  # type: ignore[attr-defined]
        handlers, countdown = self._full, [HOT]

        def checked() -> int:
            countdown[0] -= 1
            if not countdown[0]:  # a hot pc: its own straight-line check from now on
                handlers[pc] = specialized(pc, claims, inner, r, g, full)
            if g.violation is None and breaks(claims, r):
                g.violation = full(pc, r)
            return inner()
        return checked


@dataclass
class RunResult:
    r0: int
    ctx: bytes
    region: bytes
    maps: list[list[tuple[bytes, bytes]]] = field(default_factory=list)


class Executor:
    """An engine plus the host buffers it keeps across runs (the region)."""

    def __init__(self, engine: Any, case: Case) -> None:
        self.engine = engine
        self.case = case
        self.region = bytearray(REGION_SIZE) if case.target.objects else None
        self.region_addr = engine.address_of(self.region) if self.region is not None else 0
        self.last_r0 = 0
        self.last_ctx: bytearray | None = None

    def prepare(self, inp: Input) -> bytearray:
        engine, hook = self.engine, self.case.target.hook
        for m, entries in zip(engine.maps, inp.entries, strict=True):
            m.clear()
            for k, v in entries:
                m.update(k, v)
        engine.env = VmEnv(seed=inp.env_seed)
        ctx = bytearray(inp.ctx)
        if self.region is not None and inp.region is not None:
            self.region[:] = inp.region
        if hook is not None and self.region is not None:
            for f in hook.fields:
                if f.pointer:
                    ctx[f.offset:f.offset + 8] = self.region_addr.to_bytes(8, "little")
        return ctx

    def result(self, r0: int, ctx: bytearray) -> RunResult:
        hook = self.case.target.hook
        ctx_out = bytearray(ctx)
        if hook is not None:
            for f in hook.fields:
                if f.pointer:
                    ctx_out[f.offset:f.offset + f.size] = bytes(f.size)
            if hook.returns_pointer and self.region is not None and \
                    0 <= r0 - self.region_addr <= len(self.region):
                r0 = r0 - self.region_addr
        return RunResult(r0, bytes(ctx_out), bytes(self.region or b""),
                      [sorted(m.items()) for m in self.engine.maps])

    def run(self, inp: Input) -> RunResult:
        ctx = self.prepare(inp)
        self.last_ctx = ctx
        self.last_r0 = self.engine.run(ctx)
        return self.result(self.last_r0, ctx)

    def resume(self, budget: int) -> RunResult:
        """Go on with the last run, stopped by its budget (interpreter only)."""
        assert self.last_ctx is not None
        self.last_r0 = self.engine.resume(budget)
        return self.result(self.last_r0, self.last_ctx)

    def contract(self, inp: Input) -> str | None:
        """What the last run did that an accepted program must not do: return
        outside the hook's range, write a read-only context field, or leave an
        address of the engine's memory where the host can read it."""
        hook, r0, ctx = self.case.target.hook, self.last_r0, self.last_ctx
        if hook is not None and hook.returns_pointer:
            if r0 and not (self.region is not None and self.region_addr <= r0
                           <= self.region_addr + len(self.region) - RETURNED_SIZE):
                return f"r0 = {r0:#x} is neither 0 nor a pointer to {RETURNED_SIZE} bytes " \
                    "inside the region"
        elif hook is not None:
            signed = s64(r0)
            if not hook.ret_min <= signed <= hook.ret_max:
                return f"r0 = {signed} is outside the hook's range [{hook.ret_min}, " \
                    f"{hook.ret_max}]"
        if hook is not None:
            for f in hook.fields:
                span = slice(f.offset, f.offset + f.size)
                if not f.writable and not f.pointer and ctx[span] != inp.ctx[span]:
                    return f"read-only context field '{f.name}' was written"
        space = getattr(self.engine, "space", None)
        if space is None:
            return None
        words: list[tuple[str, int]] = []
        if hook is None or not hook.returns_pointer:
            words.append(("r0", r0))
        # (where, bytes after the run, bytes before it): only words that changed count
        places = [("the context", bytes(ctx), bytes(inp.ctx))]
        for m, entries in zip(self.engine.maps, inp.entries, strict=True):
            before = dict(entries)
            places += [(f"map '{m.name}'", bytes(v), before.get(k, b"")) for k, v in m.items()]
        if self.region is not None and inp.region is not None:
            places.append(("the region", bytes(self.region), bytes(inp.region)))
        highs = [(n.to_bytes(4, "little")) for n in space.objects]
        for name, data, old in places:
            old = old.ljust(len(data), b"\0")
            if data == old:
                continue
            words += [(name, w) for w in _changed_words(data, old, highs)]
        for name, w in words:
            obj = space.object_at(w)
            low = (w & 0xFFFFFFFF) - 0x8000_0000
            if obj is not None and -STACK_SLACK <= low <= len(obj.buf) + STACK_SLACK:
                if hook is not None and name == "the context" and self.region is not None \
                        and obj.buf is self.region:
                    continue  # the host's own region pointer field
                return f"pointer leak: {name} holds the address {w:#x} ({obj.name})"
        return None


def _changed_words(data: bytes, old: bytes, highs: list[bytes]) -> list[int]:
    """The 8-byte little-endian words of ``data`` (at any offset) that
    overlap a byte changed from ``old`` and whose upper half is one of
    ``highs`` (4 bytes each: the object numbers of an address space), in
    order of offset.  The scans run in C: a region is 4 KiB."""
    x = int.from_bytes(data, "little") ^ int.from_bytes(old, "little")
    if not x:
        return []
    first = ((x & -x).bit_length() - 1) >> 3
    last = (x.bit_length() - 1) >> 3
    lo, hi = max(0, first - 7), min(last, len(data) - 8)  # first and last word start
    starts: set[int] = set()
    for pattern in highs:
        p = data.find(pattern, lo + 4, hi + 8)
        while p != -1:
            starts.add(p - 4)
            p = data.find(pattern, p + 1, hi + 8)
    return [int.from_bytes(data[i:i + 8], "little") for i in sorted(starts)]
