"""Delta debugging over instructions, keeping jumps consistent.

:func:`reduce` shrinks a program while a predicate ("still interesting",
e.g. "the verifier accepts it and the interpreter faults") holds: ddmin
over instruction units (a ``lddw`` is one unit of two slots), then single
unit removal until no unit can go, then simplification of immediates, then
removal of maps nothing refers to any more.
Removing instructions re-targets every jump and local call: a jump to a
removed instruction lands on the next surviving one, and offsets are
recomputed in slots.  Programs whose jumps would leave the program are not
tried.

The predicate is the only judge: this module does not verify or run
anything itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from bpfvm import isa
from bpfvm.isa.insn import Insn
from bpfvm.program import Program

Predicate = Callable[[Program], bool]


def units(insns: Sequence[Insn]) -> list[list[Insn]]:
    """Instruction slots grouped into units (lddw keeps its two slots together)."""
    out: list[list[Insn]] = []
    pc = 0
    while pc < len(insns):
        spec = insns[pc].spec
        width = 2 if spec is not None and spec.kind is isa.Kind.LDDW and pc + 1 < len(insns) else 1
        out.append(list(insns[pc:pc + width]))
        pc += width
    return out


def _relative_field(insn: Insn) -> str | None:
    """The field holding a pc-relative target (``off`` or ``imm``), if any."""
    spec = insn.spec
    if spec is None:
        return None
    if spec.kind is isa.Kind.JCOND or (spec.kind is isa.Kind.JA and spec.cls == isa.Cls.JMP):
        return "off"
    if spec.kind is isa.Kind.CALL_LOCAL or spec.kind is isa.Kind.JA:
        return "imm"
    return None


def _unit_targets(us: list[list[Insn]]) -> list[int | None]:
    """For each unit, the unit index its jump lands on (None: no jump or bad target)."""
    slot_of, unit_at = [], {}
    pc = 0
    for i, u in enumerate(us):
        slot_of.append(pc)
        unit_at[pc] = i
        pc += len(u)
    out: list[int | None] = []
    for i, u in enumerate(us):
        field = _relative_field(u[0])
        if field is None:
            out.append(None)
            continue
        out.append(unit_at.get(slot_of[i] + 1 + getattr(u[0], field), -1))
    return out


def without(insns: Sequence[Insn], drop: set[int]) -> list[Insn] | None:
    """``insns`` with the units numbered in ``drop`` removed, jumps re-targeted.

    Returns None when a surviving jump would have nowhere to land.
    """
    return edit(insns, drop)


def edit(insns: Sequence[Insn], drop: set[int],
         insert: dict[int, list[list[Insn]]] | None = None) -> list[Insn] | None:
    """Remove the units in ``drop`` and insert new units before the given
    unit indexes (``len(units)`` appends).  Jumps keep their target unit
    (or the next survivor); inserted units must not jump.  None when a jump
    would have nowhere to land."""
    insert = insert or {}
    us = units(insns)
    targets = _unit_targets(us)
    new_slot: dict[int, int] = {}
    pc = 0
    layout: list[tuple[int | None, list[Insn]]] = []
    for i in range(len(us) + 1):
        for extra in insert.get(i, []):
            layout.append((None, extra))
            pc += len(extra)
        if i < len(us) and i not in drop:
            new_slot[i] = pc
            layout.append((i, us[i]))
            pc += len(us[i])
    end = pc
    # next surviving unit at or after each unit index
    landing: list[int | None] = [None] * (len(us) + 1)
    nxt: int | None = None
    for i in range(len(us) - 1, -1, -1):
        if i in new_slot:
            nxt = i
        landing[i] = nxt
    out: list[Insn] = []
    for i, u in layout:
        target = None if i is None else targets[i]
        if i is None or target is None:
            out.extend(u)
            continue
        if target < 0:
            return None
        land = landing[target]
        if land is None:
            return None
        field = _relative_field(u[0])
        rel = new_slot[land] - new_slot[i] - 1
        if field == "off" and not -(1 << 15) <= rel < (1 << 15):
            return None
        out.append(u[0]._replace(**{field: rel}))
        out.extend(u[1:])
    return out if out and end else None


def _with_insns(program: Program, insns: list[Insn]) -> Program:
    return replace(program, insns=insns, source=[])


class _Search:
    """Bookkeeping shared by the passes: the best program, the budget."""

    def __init__(self, program: Program, interesting: Predicate, deadline: float,
                 max_tests: int) -> None:
        self.best = program
        self.interesting = interesting
        self.deadline = deadline
        self.tests_left = max_tests
        self.tests = 0

    def out_of_budget(self) -> bool:
        return self.tests_left <= 0 or time.monotonic() > self.deadline

    def test(self, insns: list[Insn] | None) -> bool:
        if insns is None or self.out_of_budget():
            return False
        self.tests_left -= 1
        self.tests += 1
        candidate = _with_insns(self.best, insns)
        try:
            ok = bool(self.interesting(candidate))
        except Exception:  # a predicate that breaks is not interesting
            ok = False
        if ok:
            self.best = candidate
        return ok


def _ddmin(search: _Search) -> None:
    n = 2
    while not search.out_of_budget():
        count = len(units(search.best.insns))
        if count < 2:
            return
        n = min(n, count)
        chunk = (count + n - 1) // n
        chunks = [set(range(s, min(s + chunk, count))) for s in range(0, count, chunk)]
        reduced = False
        for c in chunks:  # keep only one chunk
            if search.test(without(search.best.insns, set(range(count)) - c)):
                n, reduced = 2, True
                break
        if not reduced:
            for c in chunks:  # remove one chunk
                if search.test(without(search.best.insns, c)):
                    n, reduced = max(n - 1, 2), True
                    break
        if not reduced:
            if n >= count:
                return
            n = min(count, 2 * n)


def _one_by_one(search: _Search) -> None:
    changed = True
    while changed and not search.out_of_budget():
        changed = False
        i = len(units(search.best.insns)) - 1
        while i >= 0 and not search.out_of_budget():
            if search.test(without(search.best.insns, {i})):
                changed = True
            i -= 1


_SIMPLER_IMMS = (0, 1)


def _simplify(search: _Search) -> None:
    """Replace immediates of ALU/store instructions by 0 or 1 where that stays interesting."""
    pc = 0
    while pc < len(search.best.insns) and not search.out_of_budget():
        insn = search.best.insns[pc]
        spec = insn.spec
        if spec is not None and "imm" in spec.uses and spec.kind in (
                isa.Kind.ALU, isa.Kind.MOV, isa.Kind.ST) and insn.imm not in _SIMPLER_IMMS:
            for imm in _SIMPLER_IMMS:
                insns = list(search.best.insns)
                insns[pc] = insn._replace(imm=imm)
                if search.test(insns):
                    break
        pc += 2 if spec is not None and spec.kind is isa.Kind.LDDW else 1


def _map_refs(insns: Sequence[Insn]) -> set[int]:
    return {i.imm for i in insns if i.spec is not None and i.spec.kind is isa.Kind.LDDW
            and i.spec.op != "lddw"}


def without_unused_maps(program: Program) -> Program:
    """``program`` minus the maps no ``lddw`` refers to (references renumbered)."""
    used = sorted(_map_refs(program.insns))
    if len(used) == len(program.maps):
        return program
    new_index = {old: new for new, old in enumerate(used)}
    insns = [i._replace(imm=new_index[i.imm]) if i.spec is not None
             and i.spec.kind is isa.Kind.LDDW and i.spec.op != "lddw" else i
             for i in program.insns]
    return replace(program, insns=insns, maps=[program.maps[k] for k in used], source=[])


def reduce(program: Program, interesting: Predicate, *, seconds: float = 10.0,
           max_tests: int = 2000) -> Program:
    """A smaller program for which ``interesting`` still holds.

    ``interesting(program)`` should hold on entry; the result is
    ``program`` itself when nothing could be removed.  Stops after
    ``seconds`` or ``max_tests`` predicate calls, returning the best so far.
    """
    search = _Search(program, interesting, time.monotonic() + seconds, max_tests)
    _ddmin(search)
    _one_by_one(search)
    _simplify(search)
    if not search.out_of_budget():
        fewer = without_unused_maps(search.best)
        if fewer is not search.best and search.interesting(fewer):
            search.best = fewer
    return search.best
