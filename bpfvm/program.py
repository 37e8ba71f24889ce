"""A loaded-from-text-or-bytes program: instructions plus what they need.

A :class:`Program` holds the instruction slots, the maps it declares (a
``lddw`` with the map pseudo source refers to a map by its index in
``maps``), the hook it attaches to, and a source map from pc to file:line.
It is saved either as raw bytecode (``.bin``: plain instruction words, no
maps or hook) or in a self-describing JSON object file (``.bpf.json``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from bpfvm import isa
from bpfvm.errors import BpfvmError
from bpfvm.isa.insn import Insn, decode, encode, lddw, lddw_value
from bpfvm.limits import MAX_OBJECT_SIZE

MAP_KINDS = ("array", "hash")
OBJECT_FORMAT = "bpfvm-object/1"
OBJECT_KEYS = ("format", "name", "hook", "maps", "bytecode", "source", "objects")
LDDW_OPCODE = isa.BY_KEY["lddw"].opcode
# Instructions that may not fall through, or write registers besides their destination.
_NOT_STRAIGHT = frozenset({isa.Kind.JA, isa.Kind.JCOND, isa.Kind.CALL, isa.Kind.CALL_LOCAL,
                           isa.Kind.CALLX, isa.Kind.EXIT, isa.Kind.ATOMIC, isa.Kind.LDABS,
                           isa.Kind.LDIND})
MAX_MAP_FIELD = 1 << 24  # largest key size, value size or entry count
MAX_MAP_BYTES = 256 << 20  # largest buffer one map may need (allocated at load)


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
            if not 1 <= value <= MAX_MAP_FIELD:
                return f"{what} must be between 1 and {MAX_MAP_FIELD}, not {value}"
        if (need := self.buffer_bytes()) > MAX_MAP_BYTES:
            return (f"needs {need} bytes of memory, more than the limit of "
                    f"{MAX_MAP_BYTES >> 20} MiB per map")
        return None

    def buffer_bytes(self) -> int:
        """Bytes of the flat buffer the map's layout needs (see :mod:`bpfvm.maps`)."""
        if self.kind == "array":
            return self.max_entries * _round8(self.value_size)
        capacity = 4
        while capacity < 2 * self.max_entries:
            capacity *= 2
        return capacity * (8 + _round8(self.key_size) + _round8(self.value_size))


def _round8(n: int) -> int:
    return (n + 7) & ~7


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
    # Sizes in bytes of the objects the hook's pointer fields point at, as
    # declared by ``.object NAME SIZE`` (the default for standalone verification).
    objects: dict[str, int] = field(default_factory=dict)

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
        return Program(insns, list(self.maps), self.hook, list(self.source), self.name,
                       dict(self.objects))

    def map_index(self, name: str) -> int:
        for i, m in enumerate(self.maps):
            if m.name == name:
                return i
        raise KeyError(name)

    # -- files -----------------------------------------------------------
    def to_json(self) -> dict:
        extra = {"objects": dict(self.objects)} if self.objects else {}
        return {
            "format": OBJECT_FORMAT,
            "name": self.name,
            "hook": self.hook,
            "maps": [[m.name, m.kind, m.key_size, m.value_size, m.max_entries]
                     + ([m.init.hex(), m.readonly] if m.init or m.readonly else [])
                     for m in self.maps],
            "bytecode": self.bytecode().hex(),
            "source": [[s.file, s.line] if s else None for s in self.source],
            **extra,
        }

    @classmethod
    def from_json(cls, data: object, where: str = "<object>") -> Program:
        """A program from a parsed object file; every problem is a
        :class:`BpfvmError` reading ``where: key: message``."""
        return _ObjectReader(where).program(data)

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


class _ObjectReader:
    """Checks an object file's JSON value key by key (``file: key: message``)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, message: str) -> BpfvmError:
        return BpfvmError(f"{self.where}: {key}: {message}")

    def int_(self, key: str, value: object, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_show(value)}")
        if not lo <= value <= hi:
            raise self.fail(key, f"must be between {lo} and {hi}, not {_show(value)}")
        return value

    def str_(self, key: str, value: object) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_show(value)}")
        return value

    def list_(self, key: str, value: object) -> list:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {_show(value)}")
        return value

    def program(self, data: object) -> Program:
        if not isinstance(data, dict):
            raise BpfvmError(f"{self.where}: expected a JSON object, got {_show(data)}")
        extra = [k for k in data if k not in OBJECT_KEYS]
        if extra:
            raise self.fail(str(extra[0])[:40], "unknown key (expected "
                            + ", ".join(OBJECT_KEYS) + ")")
        if data.get("format") != OBJECT_FORMAT:
            got = _show(data["format"]) if "format" in data else "nothing"
            raise self.fail("format", f"expected '{OBJECT_FORMAT}', got {got}")
        if "bytecode" not in data:
            raise self.fail("bytecode", "missing")
        name = self.str_("name", data.get("name", "prog"))
        hook = data.get("hook")
        if hook is not None:
            hook = self.str_("hook", hook)
            if not hook:
                raise self.fail("hook", "must not be empty (null: no hook)")
        maps = [self.map_(i, m) for i, m in enumerate(self.list_("maps", data.get("maps", [])))]
        names = [m.name for m in maps]
        for i, m in enumerate(names):
            if m in names[:i]:
                raise self.fail(f"maps[{i}]", f"duplicate map name '{m}'")
        insns = self.bytecode(data["bytecode"])
        source = self.source(data.get("source", []), len(insns))
        objects = self.objects(data.get("objects", {}))
        return Program(insns, maps, hook, source, name, objects)

    def objects(self, value: object) -> dict[str, int]:
        if not isinstance(value, dict):
            raise self.fail("objects", f"expected an object of NAME: BYTES, got {_show(value)}")
        out = {}
        for name, size in value.items():
            if not name:
                raise self.fail("objects", "an object name must not be empty")
            out[name] = self.int_(f"objects.{name[:40]}", size, 1, MAX_OBJECT_SIZE)
        return out

    def map_(self, i: int, value: object) -> MapDef:
        key = f"maps[{i}]"
        fields = self.list_(key, value)
        if len(fields) not in (5, 7):
            raise self.fail(key, "expected [name, kind, key_size, value_size, max_entries] "
                            f"(+ [initial hex, read-only]), got {len(fields)} items")
        name = self.str_(f"{key}[0]", fields[0])
        kind = self.str_(f"{key}[1]", fields[1])
        sizes = [self.int_(f"{key}[{j}]", fields[j], 1, MAX_MAP_FIELD) for j in (2, 3, 4)]
        init, readonly = b"", False
        if len(fields) == 7:
            text = self.str_(f"{key}[5]", fields[5])
            if len(text) % 2 or _NOT_HEX.search(text):
                raise self.fail(f"{key}[5]", "initial contents: expected hex bytes")
            init = bytes.fromhex(text)
            if not isinstance(fields[6], bool):
                raise self.fail(f"{key}[6]", f"read-only: expected true or false, got "
                                f"{_show(fields[6])}")
            readonly = fields[6]
        m = MapDef(name, kind, *sizes, init, readonly)
        if (why := m.problem()) is not None:
            raise self.fail(key, f"map {name}: {why}")
        return m

    def bytecode(self, value: object) -> list[Insn]:
        text = self.str_("bytecode", value)
        if not text:
            raise self.fail("bytecode", "empty (a program has at least one instruction)")
        if len(text) % 16:
            raise self.fail("bytecode", f"{len(text)} hex digits is not a whole number of "
                            "8-byte instructions (16 digits each)")
        if (bad := _NOT_HEX.search(text)) is not None:
            raise self.fail("bytecode", f"not hex: {_show(bad.group())} at digit {bad.start()}")
        return decode(bytes.fromhex(text))

    def source(self, value: object, slots: int) -> list[SourceLoc | None]:
        items = self.list_("source", value)
        if items and len(items) != slots:
            raise self.fail("source", f"{len(items)} entries for {slots} instruction slots "
                            "(one per slot, null where unknown, or none at all)")
        out: list[SourceLoc | None] = []
        for i, item in enumerate(items):
            if item is None:
                out.append(None)
                continue
            key = f"source[{i}]"
            if not isinstance(item, list) or len(item) != 2:
                raise self.fail(key, f"expected [file, line] or null, got {_show(item)}")
            out.append(SourceLoc(self.str_(f"{key}[0]", item[0]),
                                 self.int_(f"{key}[1]", item[1], 1, 1 << 31)))
        return out


_NOT_HEX = re.compile(r"[^0-9a-fA-F]")


def _show(value: object) -> str:
    """A short, JSON-flavoured rendering of a value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int) and value.bit_length() > 64:
        return "a number of more than 64 bits"
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
