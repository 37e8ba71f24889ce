"""Page-table programs: one source file, three programs, instantiated per region size.

A page-table program file (``programs/hashed_pt.s``, ``programs/learned_pt.s``)
holds one section per hook (:mod:`bpfvm.asm.sections`): ``pt_map``,
``pt_unmap`` and ``pt_lookup``; :func:`split_sections` checks that all three
are there and follow the region-size convention below.

The verifier proves every region access in bounds against a constant, so a
program is tied to the size of the region it runs on.  By convention the
first instruction of each section is ``r9 = BYTES ll`` (the region size in
bytes, every bound derived from it); :meth:`PtPrograms.for_region` replaces
that constant with the actual region size, as libbpf sets a ``const
volatile`` before load, and verifies the result for that size (cached per
size).

:class:`LoadCounter` is the reference interpreter with a load observer: it
records the 64-byte lines of one watched buffer that a run loads from, which
is how a walk's memory references are counted.

This module loads and counts; the page table itself is :mod:`mmcore.pagetables.progpt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfvm import isa
from bpfvm.asm import sections
from bpfvm.errors import BpfvmError
from bpfvm.helpers import HelperTable
from bpfvm.interp.interpreter import Interpreter
from bpfvm.isa.insn import lddw, lddw_value
from bpfvm.loader import default_helpers, load, make_engine
from bpfvm.program import Program
from mmcore.hooks.specs import HOOKS, PT_LOOKUP, PT_MAP, PT_UNMAP

PT_HOOKS = (PT_MAP.name, PT_UNMAP.name, PT_LOOKUP.name)
SIZE_REG = 9  # the register the first instruction loads the region size into
LINE = 64


class PtProgramError(BpfvmError):
    """A page-table program file that lacks a section or the size convention."""


def split_sections(text: str, filename: str = "<input>",
                   helpers: HelperTable | None = None) -> dict[str, Program]:
    """Assemble each ``.hook`` section of ``text``; keys are hook names."""
    out = {str(p.hook): p for p in sections.split_sections(text, filename, helpers=helpers)}
    missing = [h for h in PT_HOOKS if h not in out]
    if missing:
        raise PtProgramError(f"{filename}: no section for hook(s) {', '.join(missing)}")
    for hook, prog in out.items():
        if hook not in PT_HOOKS:
            raise PtProgramError(f"{filename}: section for {hook}, not a page-table hook")
        if len(prog.insns) < 2 or prog.insns[0].opcode != 0x18 or \
                prog.insns[0].dst != SIZE_REG or prog.insns[0].src != 0:
            raise PtProgramError(f"{prog.where(0)}: the {hook} section must start with "
                                 f"'r{SIZE_REG} = <region bytes> ll'")
    return out


def with_region_size(prog: Program, nbytes: int) -> Program:
    """``prog`` with its leading region-size constant set to ``nbytes``."""
    insns = list(prog.insns)
    insns[0:2] = lddw(SIZE_REG, nbytes)
    return Program(insns, list(prog.maps), prog.hook, list(prog.source), prog.name)


def region_size_of(prog: Program) -> int:
    return lddw_value(prog.insns[0], prog.insns[1])


@dataclass
class PtPrograms:
    """The three programs of one page-table design, verified per region size."""

    name: str
    templates: dict[str, Program] = field(repr=False)
    helpers: HelperTable = field(default_factory=default_helpers, repr=False)
    verified: dict[int, dict[str, Program]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_file(cls, path: str | Path, helpers: HelperTable | None = None) -> PtPrograms:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PtProgramError(f"{path}: cannot read: {exc}") from None
        helpers = helpers or default_helpers()
        return cls(Path(path).stem, split_sections(text, str(path), helpers), helpers)

    def for_region(self, nbytes: int) -> dict[str, Program]:
        """The programs for a region of ``nbytes``, each accepted by the verifier
        (raises :class:`bpfvm.loader.Rejected` otherwise)."""
        progs = self.verified.get(nbytes)
        if progs is None:
            progs = {h: with_region_size(p, nbytes) for h, p in self.templates.items()}
            for hook, prog in progs.items():
                load(prog, engine="interp", helpers=self.helpers, hook=HOOKS[hook],
                     objects={"region": nbytes})
            self.verified[nbytes] = progs
        return progs

    def engines(self, nbytes: int, engine: str) -> dict[str, Any]:
        """One engine per hook for a region of ``nbytes`` (verified first)."""
        return {h: make_engine(p, engine, self.helpers)
                for h, p in self.for_region(nbytes).items()}


class LoadCounter(Interpreter):
    """The interpreter, recording which lines of a watched buffer each run loads."""

    def __init__(self, program: Program, helpers: HelperTable, **kw: Any) -> None:
        self._loads: dict[int, tuple[int, int, int]] = {}
        for pc, insn in enumerate(program.insns):
            spec = insn.spec
            if spec is not None and spec.kind in (isa.Kind.LDX, isa.Kind.ATOMIC):
                reg = insn.src if spec.kind is isa.Kind.LDX else insn.dst
                self._loads[pc] = (reg, insn.off, spec.width)
        self._base, self._size = 0, 0
        self.lines: set[int] = set()
        super().__init__(program, helpers, on_step=self._observe, **kw)

    def watch(self, buf: bytearray) -> int:
        """Watch ``buf`` (made addressable); returns its address."""
        self._base = self.address_of(buf, "region")
        self._size = len(buf)
        return self._base

    def _observe(self, pc: int, regs: list[int]) -> None:
        load_ = self._loads.get(pc)
        if load_ is not None:
            rel = regs[load_[0]] + load_[1] - self._base
            if 0 <= rel < self._size:
                self.lines.add(rel >> 6)
                self.lines.add((rel + load_[2] - 1) >> 6)
