"""The fuzzer's records and instruction builder.

:func:`bpfvm.fuzz.generate.generate` draws a :class:`Case`: a :class:`~bpfvm.program.Program`
plus the :class:`Target` it runs under (the generic ``mem`` type with a
context buffer of N bytes, or one of the MM hooks of :mod:`mmcore.hooks.specs`).
Programs are assembled from snippets that real policies use and that
stress a verifier: context-field reads, stack spills and fills, map lookups
with and without null checks, bounded and data-bounded loops, pointer
arithmetic with masked or compared indexes, JMP32 refinements, local calls,
atomics and helper calls.  Each snippet is valid by construction, except
that with probability ``bad`` it carries one small defect (an off-by-one
bound, a missing null check, an uninitialised stack read, a 32-bit compare
guarding a 64-bit index...): a sound verifier rejects those, a broken one
lets them through and the oracles catch them at run time.

The program is built by :class:`bpfvm.fuzz.generate.Gen` on the
bookkeeping of :mod:`bpfvm.fuzz.gen_core`; this module holds the public
records (:class:`Target`, :class:`Case`) and the instruction builder.
It knows nothing about the verifier
or the engines; every opcode comes from :data:`bpfvm.isa.BY_KEY`.  The
same seed always gives the same case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bpfvm import isa
from bpfvm.hookspec import HookSpec
from bpfvm.isa.insn import Insn
from bpfvm.isa.insn import lddw as lddw_slots
from bpfvm.program import Program
from mmcore.hooks.specs import HOOKS

REGION_SIZE = 4096
MEM_SIZES = (8, 16, 32, 64, 128)
HELPER_LOOKUP, HELPER_UPDATE, HELPER_DELETE = 1, 2, 3
HELPER_KTIME, HELPER_TRACE, HELPER_PRANDOM = 5, 6, 7
EDGE_IMMS = (0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 255, 256, 0x7FFF, 0xFFFF, 0x7FFFFFFF,
             -0x80000000, -1, -2, -8, -64)
EDGE_WIDE = (0xFFFFFFFF, 0x100000000, 0x1_0000_0010, 0x7FFF_FFFF_FFFF_FFFF,
             0x8000_0000_0000_0000, 0xFFFF_FFFF_0000_0000)


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
    return list(TARGETS)


def _targets() -> tuple[Target, ...]:
    out = [Target(None, n) for n in MEM_SIZES]
    for hook in HOOKS.values():
        objects = tuple((name, REGION_SIZE) for name in hook.objects)
        out.append(Target(hook, hook.ctx_size, objects))
    return tuple(out)


TARGETS = _targets()  # made once: the hook records are constants


def target_named(name: str) -> Target:
    for t in targets():
        if t.name == name:
            return t
    if name.startswith("mem") and name[3:].isdigit():
        return Target(None, int(name[3:]))
    raise KeyError(name)


def ins(key: str, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:
    """The instruction of spec ``key``, its discriminating field filled in."""
    opcode, field, value = _SHAPES[key]
    if field == "src":
        src = value
    elif field == "off":
        off = value
    elif field == "imm":
        imm = value
    return Insn(opcode, dst, src, off, imm)


# per spec key: (opcode, the discriminating field or None, its value)
_SHAPES = {s.key: (s.opcode, *(s.match or (None, 0))) for s in isa.TABLE}


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

