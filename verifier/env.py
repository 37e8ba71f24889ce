"""What the transfer functions know about the program being verified.

An :class:`Env` holds the program's instructions and static graph, the
hook (or the generic buffer context), helper and map records, the sizes of
host objects, the widening thresholds, and the :class:`Checker` of the
instruction being analysed.  It is built once per verification.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bpfvm.helpers import HelperTable
from bpfvm.hookspec import HookSpec
from bpfvm.program import MapDef, Program
from verifier.cfg import Code
from verifier.checks import Checker
from verifier.domains.interval import Thresholds
from verifier.domains.values import Obj, Val, const

MAX_FRAMES = 8


@dataclass
class Env:
    program: Program
    code: Code
    hook: HookSpec | None
    ctx: Obj  # what r1 points at on entry
    helpers: HelperTable
    maps: list[MapDef]
    objects: dict[str, int]
    th: Thresholds
    checker: Checker
    chain: tuple[int, ...] = ()  # call sites of the node being analysed
    part: int = 0  # which of the states kept apart at that node (verifier.partition)
    branches: dict[tuple, tuple[bool, bool]] = field(default_factory=dict)
    loop_th: dict[int, Thresholds] = field(default_factory=dict)  # widening points per loop head

    consts: dict[int, Val] = field(default_factory=dict)  # immediates' values, made once

    def const(self, value: int) -> Val:
        v = self.consts.get(value)
        if v is None:
            v = self.consts[value] = const(value)
        return v

    def map_obj(self, index: int, entry: int = 0) -> Obj:
        """A value of map ``index`` (``entry``: which one, see :class:`Obj`)."""
        m = self.maps[index]
        return Obj("map_value", index, m.value_size, m.name, entry)
