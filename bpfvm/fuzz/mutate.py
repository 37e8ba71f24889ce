"""Mutations of existing programs, and the corpus they start from.

:func:`mutate` applies one to three small edits to a program: an immediate
or memory offset moved to an edge value, a jump condition or access size
swapped for a sibling from the ISA table, ALU/JMP width flipped (64 <-> 32
bits), a register renamed, a unit deleted or duplicated (jumps re-targeted
by :func:`bpfvm.fuzz.reduce.edit`), a jump offset nudged.  Siblings are found
by querying :data:`bpfvm.isa.TABLE`, never by listing opcodes.

:func:`load_corpus` reads seed programs: ``.s`` files (assembled with
:mod:`bpfvm.asm.assembler`, their target from the hook they declare, else a
``mem`` buffer of the size a reproducer's header names, else 64 bytes)
conformance ``.data`` vectors (``-- asm`` and ``-- mem`` sections) and the
verifier's ``.cases`` corpus (``## case:`` blocks).
Files that do not assemble are skipped and counted.
Mutants may be malformed; callers check them with :func:`bpfvm.isa.insn.check`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bpfvm import isa
from bpfvm.fuzz.builder import EDGE_IMMS, Case, Target, target_named
from bpfvm.fuzz.reduce import edit, units
from bpfvm.isa.insn import Insn
from bpfvm.program import Program
from mmcore.hooks.specs import HOOKS

DEFAULT_MEM = 64
# the target line of a reproducer's header (see bpfvm.fuzz.campaign.reproducer)
_CTX_HEADER = re.compile(r"^# target: mem, context of (\d+) bytes", re.MULTILINE)
# the verifier's corpus files: "## case: NAME" blocks with "## key: value" lines
_CASE = re.compile(r"^## case:", re.MULTILINE)
_META = re.compile(r"^## ([a-z_-]+): *(.*)$", re.MULTILINE)


def _siblings() -> dict[tuple, list[isa.OpSpec]]:
    """Specs interchangeable with each other: same kind, class, operand usage."""
    out: dict[tuple, list[isa.OpSpec]] = {}
    for spec in isa.TABLE:
        if spec.kind in (isa.Kind.JCOND, isa.Kind.ALU, isa.Kind.LDX, isa.Kind.ST, isa.Kind.STX,
                         isa.Kind.ATOMIC):
            key = (spec.kind, spec.cls if spec.kind in (isa.Kind.JCOND, isa.Kind.ALU) else None,
                   spec.uses)
            out.setdefault(key, []).append(spec)
    return out


def _width_twins() -> dict[str, str]:
    """spec key -> the same operation at the other width (add64_k <-> add32_k ...)."""
    by_shape: dict[tuple, list[isa.OpSpec]] = {}
    for spec in isa.TABLE:
        if spec.kind in (isa.Kind.JCOND, isa.Kind.ALU, isa.Kind.MOV, isa.Kind.NEG) or (
                spec.kind is isa.Kind.ATOMIC):
            by_shape.setdefault((spec.kind, spec.op, spec.uses, spec.match), []).append(spec)
    twins = {}
    for group in by_shape.values():
        if len(group) == 2:
            a, b = group
            twins[a.key], twins[b.key] = b.key, a.key
    return twins


@dataclass(frozen=True)
class _Tables:
    siblings: dict[tuple, list[isa.OpSpec]]
    twins: dict[str, str]


def tables() -> _Tables:
    return _Tables(_siblings(), _width_twins())


def _rebuild(insn: Insn, spec: isa.OpSpec) -> Insn:
    fields = {"src": insn.src, "off": insn.off, "imm": insn.imm}
    if spec.match:
        fields[spec.match[0]] = spec.match[1]
    return Insn(spec.opcode, insn.dst, fields["src"], fields["off"], fields["imm"])


class Mutator:
    """Draws edits from a seeded generator; the tables are built once."""

    def __init__(self, rng: random.Random, t: _Tables | None = None) -> None:
        self.rng = rng
        self.t = t or tables()

    def _pick(self, insns: list[Insn], pred) -> int | None:
        pcs = [pc for pc, i in enumerate(insns)
               if (spec := i.spec) is not None and pred(i, spec)]
        return self.rng.choice(pcs) if pcs else None

    def m_imm(self, insns: list[Insn]) -> list[Insn] | None:
        pc = self._pick(insns, lambda i, s: "imm" in s.uses and s.kind in (
            isa.Kind.ALU, isa.Kind.MOV, isa.Kind.JCOND, isa.Kind.ST))
        if pc is None:
            return None
        old = insns[pc].imm
        new = self.rng.choice((*EDGE_IMMS, old + 1, old - 1, old * 2, ~old))
        new = (new + (1 << 31)) % (1 << 32) - (1 << 31)
        return [*insns[:pc], insns[pc]._replace(imm=new), *insns[pc + 1:]]

    def m_off(self, insns: list[Insn]) -> list[Insn] | None:
        pc = self._pick(insns, lambda i, s: s.kind in (
            isa.Kind.LDX, isa.Kind.ST, isa.Kind.STX, isa.Kind.ATOMIC))
        if pc is None:
            return None
        insn = insns[pc]
        delta = self.rng.choice((1, -1, insn.spec.width, -insn.spec.width, 8, -8, 64))
        off = max(-(1 << 15), min((1 << 15) - 1, insn.off + delta))
        return [*insns[:pc], insn._replace(off=off), *insns[pc + 1:]]

    def m_sibling(self, insns: list[Insn]) -> list[Insn] | None:
        def has(i: Insn, s: isa.OpSpec) -> bool:
            return len(self._group(s)) > 1
        pc = self._pick(insns, has)
        if pc is None:
            return None
        spec = insns[pc].spec
        other = self.rng.choice([s for s in self._group(spec) if s is not spec])
        return [*insns[:pc], _rebuild(insns[pc], other), *insns[pc + 1:]]

    def _group(self, spec: isa.OpSpec) -> list[isa.OpSpec]:
        cls = spec.cls if spec.kind in (isa.Kind.JCOND, isa.Kind.ALU) else None
        return self.t.siblings.get((spec.kind, cls, spec.uses), [])

    def m_width(self, insns: list[Insn]) -> list[Insn] | None:
        pc = self._pick(insns, lambda i, s: s.key in self.t.twins)
        if pc is None:
            return None
        twin = isa.BY_KEY[self.t.twins[insns[pc].spec.key]]
        return [*insns[:pc], _rebuild(insns[pc], twin), *insns[pc + 1:]]

    def m_reg(self, insns: list[Insn]) -> list[Insn] | None:
        pc = self._pick(insns, lambda i, s: bool({"dst", "src"} & s.uses))
        if pc is None:
            return None
        insn, spec = insns[pc], insns[pc].spec
        fields = [f for f in ("dst", "src") if f in spec.uses]
        field = self.rng.choice(fields)
        top = 9 if field == "dst" and spec.writes_dst else 10
        new = insn._replace(**{field: self.rng.randint(0, top)})
        return [*insns[:pc], new, *insns[pc + 1:]]

    def m_delete(self, insns: list[Insn]) -> list[Insn] | None:
        n = len(units(insns))
        return edit(insns, {self.rng.randrange(n)}) if n > 1 else None

    def m_duplicate(self, insns: list[Insn]) -> list[Insn] | None:
        us = units(insns)
        plain = [i for i, u in enumerate(us) if u[0].spec is not None and u[0].spec.kind in (
            isa.Kind.ALU, isa.Kind.MOV, isa.Kind.LDX, isa.Kind.ST, isa.Kind.STX,
            isa.Kind.ATOMIC, isa.Kind.CALL, isa.Kind.LDDW)]
        if not plain:
            return None
        src = self.rng.choice(plain)
        return edit(insns, set(), {self.rng.randrange(len(us) + 1): [us[src]]})

    # map-value offsets of a lddw: around the value sizes the generator uses, both signs
    _VALUE_OFFS = (0, 1, 7, 8, 15, 16, 23, 24, 63, 64, -1, -8, -16, -64, 1 << 31)

    def m_value_off(self, insns: list[Insn]) -> list[Insn] | None:
        """Move the map-value offset of a ``lddw`` (its second slot's imm)."""
        pcs = [pc for pc, i in enumerate(insns[:-1]) if i.spec is not None
               and i.spec.key == "lddw_map_value"]
        if not pcs:
            return None
        pc = self.rng.choice(pcs)
        off = self.rng.choice(self._VALUE_OFFS)
        second = insns[pc + 1]._replace(imm=(off + (1 << 31)) % (1 << 32) - (1 << 31))
        return [*insns[:pc + 1], second, *insns[pc + 2:]]

    def m_jump(self, insns: list[Insn]) -> list[Insn] | None:
        pc = self._pick(insns, lambda i, s: s.kind is isa.Kind.JCOND or (
            s.kind is isa.Kind.JA and s.cls == isa.Cls.JMP))
        if pc is None:
            return None
        insn = insns[pc]
        return [*insns[:pc], insn._replace(off=insn.off + self.rng.choice((1, -1, 2))),
                *insns[pc + 1:]]

    MUTATIONS = (("m_imm", 4), ("m_off", 3), ("m_sibling", 3), ("m_width", 2), ("m_reg", 2),
                 ("m_delete", 2), ("m_duplicate", 1), ("m_jump", 1), ("m_value_off", 1))

    def mutate(self, program: Program, count: int | None = None) -> tuple[Program, list[str]]:
        names = [n for n, _ in self.MUTATIONS]
        weights = [w for _, w in self.MUTATIONS]
        insns = list(program.insns)
        done: list[str] = []
        for _ in range(count or self.rng.randint(1, 3)):
            name = self.rng.choices(names, weights)[0]
            out = getattr(self, name)(insns)
            if out:
                insns = out
                done.append(name[2:])
        return replace(program, insns=insns, source=[]), done


def mutate(case: Case, rng: random.Random, t: _Tables | None = None) -> Case:
    """A mutant of ``case`` (same target and maps)."""
    program, done = Mutator(rng, t).mutate(case.program)
    return Case(program, case.target, [*case.notes, *(f"mut:{d}" for d in done)])


# -- corpus -------------------------------------------------------------------

def _sections(text: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.split("#", 1)[0].rstrip()
        if line.startswith("--"):
            current = line[2:].strip()
            out[current] = []
        elif current is not None and line.strip():
            out[current].append(line)
    return {k: "\n".join(v) + "\n" for k, v in out.items()}


def _cases_file(path: Path, assemble: Any) -> tuple[list[Case], list[str]]:
    """The programs of a verifier corpus file (``## case:`` blocks with
    ``## hook:`` or ``## ctx:`` headers); cases for hooks that are not MM hooks
    (test-only hooks) are skipped."""
    cases, skipped = [], []
    for block in _CASE.split(path.read_text())[1:]:
        name, _, body = block.partition("\n")
        meta = dict(_META.findall(body))
        hook = meta.get("hook")
        if hook is not None and hook not in HOOKS:
            skipped.append(f"{path}: {name.strip()}: test hook '{hook}'")
            continue
        try:
            program = assemble(body, f"{path}:{name.strip()}")
        except Exception as exc:
            skipped.append(f"{path}: {name.strip()}: {str(exc).splitlines()[0]}")
            continue
        program.name = name.strip()
        program.hook = hook
        target = target_named(hook) if hook else Target(None, int(meta.get("ctx", "0")) or 8)
        cases.append(Case(program, target, [f"corpus:{path.name}:{program.name}"]))
    return cases, skipped


def _target_for(program: Program, mem_size: int) -> Target:
    if program.hook:
        try:
            return target_named(program.hook)
        except KeyError:
            pass
    return Target(None, mem_size)


def load_corpus(paths: Iterable[str | Path]) -> tuple[list[Case], list[str]]:
    """Cases from every ``.s``, ``.data`` and BPF object (``.o``) file under
    ``paths``, plus the ``file: reason`` of each file skipped."""
    try:
        from bpfvm.asm.assembler import assemble
    except ImportError:
        return [], ["assembler not available: corpus not loaded"]
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*")
                                if f.suffix in (".s", ".data", ".cases", ".o")))
        elif p.exists():
            files.append(p)
    cases, skipped = [], []
    for f in files:
        if f.suffix == ".cases":
            got, bad = _cases_file(f, assemble)
            cases += got
            skipped += bad
            continue
        if f.suffix == ".o":  # a BPF object: one case per program section
            try:
                from bpfvm.asm.elf import load_object_file

                got = load_object_file(f)
            except Exception as exc:  # as below: an unreadable corpus file is skipped
                skipped.append(f"{f}: {str(exc).splitlines()[0]}")
                continue
            cases += [Case(p, _target_for(p, DEFAULT_MEM), [f"corpus:{f.name}"]) for p in got]
            continue
        try:
            text = f.read_text()
            mem = DEFAULT_MEM
            if f.suffix == ".data":
                sec = _sections(text)
                if "asm" not in sec or "raw" in sec:
                    skipped.append(f"{f}: no assembly section")
                    continue
                mem = max(len(bytes.fromhex("".join(sec.get("mem", "").split()))), 8)
                text = sec["asm"]
            found = _CTX_HEADER.search(text)
            if found:
                mem = int(found.group(1))
            program = assemble(text, str(f))
        except Exception as exc:  # a corpus file we cannot read is skipped, not fatal
            skipped.append(f"{f}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        program.name = f.stem
        cases.append(Case(program, _target_for(program, mem), [f"corpus:{f.name}"]))
    return cases, skipped
