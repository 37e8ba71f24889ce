"""A loaded-from-text-or-bytes program: instructions plus what they need.

A :class:`Program` holds the instruction slots, the maps it declares (a
``lddw`` with the map pseudo source refers to a map by its index in
``maps``), the hook it attaches to, and a source map from pc to file:line.
It is saved either as raw bytecode (``.bin``: plain instruction words, no
maps or hook) or in a self-describing JSON object file (``.bpf.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bpfvm import isa
from bpfvm.errors import BpfvmError
from bpfvm.isa.insn import Insn, decode, encode, lddw, lddw_value

MAP_KINDS = ("array", "hash")
OBJECT_FORMAT = "bpfvm-object/1"
LDDW_OPCODE = isa.BY_KEY["lddw"].opcode
# Instructions that may not fall through, or write registers besides their destination.
_NOT_STRAIGHT = frozenset({isa.Kind.JA, isa.Kind.JCOND, isa.Kind.CALL, isa.Kind.CALL_LOCAL,
                           isa.Kind.CALLX, isa.Kind.EXIT, isa.Kind.ATOMIC, isa.Kind.LDABS,
                           isa.Kind.LDIND})


@dataclass(frozen=True, slots=True)
class MapDef:
    """A map declaration: ``name``, kind, key and value sizes in bytes, capacity."""

    name: str
    kind: str
    key_size: int
    value_size: int
    max_entries: int
    init: bytes = b""  # initial bytes of entry 0 (an object's .data / .rodata)
    readonly: bool = False  # programs may not write its values (.rodata)

    def problem(self) -> str | None:
        """Why this declaration is invalid, or None."""
        if self.kind not in MAP_KINDS:
            return f"unknown map type '{self.kind}' (expected one of {', '.join(MAP_KINDS)})"
        if self.kind == "array" and self.key_size != 4:
            return "array maps have 4-byte keys"
        if self.init and (self.kind != "array" or len(self.init) > self.value_size):
            return "initial contents need an array map whose value holds them"
        for what in ("key_size", "value_size", "max_entries"):
            value = getattr(self, what)
            if not 1 <= value <= (1 << 24):
                return f"{what} must be between 1 and {1 << 24}, not {value}"
        return None


@dataclass(frozen=True, slots=True)
class SourceLoc:
    file: str
    line: int
    text: str = field(default="", compare=False)  # the source line, when not at hand (C)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Program:
    """Instruction slots plus maps, hook and source map."""

    insns: list[Insn]
    maps: list[MapDef] = field(default_factory=list)
    hook: str | None = None
    source: list[SourceLoc | None] = field(default_factory=list)
    name: str = "prog"

    def __post_init__(self) -> None:
        if len(self.source) < len(self.insns):
            self.source = list(self.source) + [None] * (len(self.insns) - len(self.source))

    def where(self, pc: int) -> str:
        """``file:line`` of slot ``pc`` when known, else ``pc N``."""
        loc = self.source[pc] if 0 <= pc < len(self.source) else None
        return str(loc) if loc else f"pc {pc}"

    def bytecode(self) -> bytes:
        return encode(self.insns)

    def constant(self, pc: int) -> tuple[int, int] | None:
        """``(register, value)`` when slot ``pc`` loads a plain 64-bit constant
        (``rN = VALUE ll``), else None."""
        if not 0 <= pc < len(self.insns) - 1:
            return None
        first = self.insns[pc]
        if first.opcode != LDDW_OPCODE or first.src != isa.PSEUDO_IMM64:
            return None
        return first.dst, lddw_value(first, self.insns[pc + 1])

    def leading_constant(self, reg: int, within: int = 16) -> int | None:
        """The pc of the first write of ``reg`` when that write is a plain
        64-bit constant load (see :meth:`constant`) in straight-line code at
        the start of the program: only instructions that fall through and
        write nothing but their destination (register moves, arithmetic,
        loads, stores) may come before it, in the first ``within`` slots.
        None otherwise.  A compiled program sets a constant this way: clang
        may put register moves before it."""
        pc, end = 0, min(within, len(self.insns))
        while pc < end:
            insn = self.insns[pc]
            spec = insn.spec
            if spec is None or spec.kind in _NOT_STRAIGHT:
                return None
            if spec.writes_dst and insn.dst == reg:
                found = self.constant(pc)
                return pc if found is not None and found[0] == reg else None
            pc += spec.slots
        return None

    def with_constant(self, pc: int, value: int) -> Program:
        """A copy whose constant load at ``pc`` (see :meth:`constant`) loads
        ``value`` instead: how a host sets a size before load, as libbpf sets
        a ``const volatile``."""
        found = self.constant(pc)
        if found is None:
            raise BpfvmError(f"{self.where(pc)}: not a 64-bit constant load")
        insns = list(self.insns)
        insns[pc:pc + 2] = lddw(found[0], value)
        return Program(insns, list(self.maps), self.hook, list(self.source), self.name)

    def map_index(self, name: str) -> int:
        for i, m in enumerate(self.maps):
            if m.name == name:
                return i
        raise KeyError(name)

    # -- files -----------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": OBJECT_FORMAT,
            "name": self.name,
            "hook": self.hook,
            "maps": [[m.name, m.kind, m.key_size, m.value_size, m.max_entries]
                     + ([m.init.hex(), m.readonly] if m.init or m.readonly else [])
                     for m in self.maps],
            "bytecode": self.bytecode().hex(),
            "source": [[s.file, s.line] if s else None for s in self.source],
        }

    @classmethod
    def from_json(cls, data: dict, where: str = "<object>") -> Program:
        try:
            if data.get("format") != OBJECT_FORMAT:
                raise BpfvmError(f"{where}: format: expected '{OBJECT_FORMAT}'")
            maps = [MapDef(str(n), str(k), int(ks), int(vs), int(me),
                           bytes.fromhex(rest[0]) if rest else b"", bool(rest[1:] and rest[1]))
                    for n, k, ks, vs, me, *rest in data.get("maps", [])]
            insns = decode(bytes.fromhex(data["bytecode"]))
            source = [SourceLoc(str(s[0]), int(s[1])) if s else None
                      for s in data.get("source", [])]
            hook = data.get("hook")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BpfvmError(f"{where}: malformed object file ({exc})") from None
        for m in maps:
            if (why := m.problem()) is not None:
                raise BpfvmError(f"{where}: map {m.name}: {why}")
        return cls(insns, maps, hook, source, str(data.get("name", "prog")))

    def save(self, path: str | Path) -> None:
        """Write ``.bin`` (raw words) or, for any other suffix, the JSON object."""
        path = Path(path)
        if path.suffix == ".bin":
            path.write_bytes(self.bytecode())
        else:
            path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load_bytes(cls, data: bytes, name: str = "prog") -> Program:
        return cls(decode(data), name=name)
