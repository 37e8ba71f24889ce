"""Page-table programs: one source file, three programs, instantiated per region size.

A page-table program file (``programs/hashed_pt.s``, ``programs/learned_pt.s``)
holds one section per hook: ``pt_map``, ``pt_unmap`` and ``pt_lookup``;
:func:`check_sections` checks that all three are there and follow the
region-size convention below.

The verifier proves every region access in bounds against a constant, so a
program is tied to the size of the region it runs on.  By convention the
first instruction of each section is ``r9 = BYTES ll`` (the region size in
bytes, every bound derived from it); compiled C may put register moves
before it, so the constant is the first write of r9, as long as no jump,
call or exit comes first (:meth:`~bpfvm.program.Program.leading_constant`).
:meth:`PtPrograms.for_region` replaces that constant with the actual region
size, as libbpf sets a ``const volatile`` before load, and verifies the
result for that size (cached per size).

:class:`LoadCounter` runs a program on the reference interpreter with a
load observer: it records the 64-byte lines of one watched buffer that a run loads from, which
is how a walk's memory references are counted.

This module loads and counts; the page table itself is :mod:`mmcore.pagetables.progpt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bpfvm.engine import Engine
from bpfvm.errors import BpfvmError
from bpfvm.helpers import HelperTable
from bpfvm.load import load, make_engine, read_programs
from bpfvm.program import Program
from mmcore.hooks.helpers import policy_helpers
from mmcore.hooks.specs import HOOKS, PT_LOOKUP, PT_MAP, PT_UNMAP

PT_HOOKS = (PT_MAP.name, PT_UNMAP.name, PT_LOOKUP.name)
SIZE_REG = 9  # the register the first instruction loads the region size into
LINE = 64


class PtProgramError(BpfvmError):
    """A page-table program file that lacks a section or the size convention."""


def check_sections(programs: list[Program], filename: str) -> dict[str, Program]:
    """The three page-table programs of a file by hook name, checked."""
    out = {str(p.hook): p for p in programs}
    missing = [h for h in PT_HOOKS if h not in out]
    if missing:
        raise PtProgramError(f"{filename}: no section for hook(s) {', '.join(missing)}")
    for hook, prog in out.items():
        if hook not in PT_HOOKS:
            raise PtProgramError(f"{filename}: section for {hook}, not a page-table hook")
        if size_slot(prog) is None:
            raise PtProgramError(f"{prog.where(0)}: the {hook} section must start with "
                                 f"'r{SIZE_REG} = <region bytes> ll'")
    return out


def size_slot(prog: Program) -> int | None:
    """Where the region-size constant is: the first instruction, or (compiled C,
    where clang may put register moves first) the first write of r9, when
    that is a plain ``lddw`` before any jump, call or exit."""
    return prog.leading_constant(SIZE_REG)


def with_region_size(prog: Program, nbytes: int) -> Program:
    """``prog`` with its leading region-size constant set to ``nbytes``."""
    at = size_slot(prog)
    assert at is not None, "not a page-table program (no leading size constant)"
    return prog.with_constant(at, nbytes)


def region_size_of(prog: Program) -> int:
    at = size_slot(prog)
    found = prog.constant(at) if at is not None else None
    assert found is not None, "not a page-table program (no leading size constant)"
    return found[1]


@dataclass
class PtPrograms:
    """The three programs of one page-table design, verified per region size."""

    name: str
    templates: dict[str, Program] = field(repr=False)
    helpers: HelperTable = field(default_factory=policy_helpers, repr=False)
    verified: dict[int, dict[str, Program]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_file(cls, path: str | Path, helpers: HelperTable | None = None) -> PtPrograms:
        helpers = helpers or policy_helpers()
        try:
            programs = read_programs(path, helpers, hooks=HOOKS)
        except PtProgramError:
            raise
        except BpfvmError as exc:
            raise PtProgramError(f"cannot read: {exc}") from None
        return cls(Path(path).stem, check_sections(programs, str(path)), helpers)

    def for_region(self, nbytes: int) -> dict[str, Program]:
        """The programs for a region of ``nbytes``, each accepted by the verifier
        (raises :class:`bpfvm.load.Rejected` otherwise)."""
        progs = self.verified.get(nbytes)
        if progs is None:
            progs = {h: with_region_size(p, nbytes) for h, p in self.templates.items()}
            for hook, prog in progs.items():
                load(prog, engine="interp", helpers=self.helpers, hook=HOOKS[hook],
                     objects={"region": nbytes})
            self.verified[nbytes] = progs
        return progs

    def engines(self, nbytes: int, engine: str) -> dict[str, Engine]:
        """One engine per hook for a region of ``nbytes`` (verified first)."""
        return {h: make_engine(p, engine, self.helpers)
                for h, p in self.for_region(nbytes).items()}


class LoadCounter:
    """A program on the interpreter, recording which 64-byte lines of one
    watched buffer each run loads from (a page walk's memory references)."""

    def __init__(self, program: Program, helpers: HelperTable) -> None:
        self._base, self._size = 0, 0
        self.lines: set[int] = set()
        self.engine = make_engine(program, "interp", helpers, on_load=self._observe)

    def watch(self, buf: bytearray) -> int:
        """Watch ``buf`` (made addressable); returns its address."""
        self._base = self.engine.address_of(buf, "region")
        self._size = len(buf)
        return self._base

    def run(self, mem: bytearray | None = None) -> int:
        return self.engine.run(mem)

    def _observe(self, addr: int, size: int) -> None:
        rel = addr - self._base
        if 0 <= rel < self._size:
            self.lines.add(rel >> 6)
            self.lines.add((rel + size - 1) >> 6)
