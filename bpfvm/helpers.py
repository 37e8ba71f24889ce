"""Helper records: what a program may call, read by every component.

A :class:`HelperSpec` gives a helper's id (the kernel's id where one exists),
name, argument kinds, return kind and Python implementation.  The verifier
checks calls against the kinds, the interpreter and JIT call the
implementation (or a native lowering), the disassembler prints the name.
A :class:`HelperTable` is an explicit set of records passed to whoever needs
it; there is no global registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum


class Arg(Enum):
    """Kinds of helper arguments (after the kernel's ARG_* constants)."""

    ANYTHING = "anything"  # any initialised scalar
    MAP = "map"  # a map handle loaded with lddw
    MAP_KEY = "map_key"  # pointer to key_size initialised bytes
    MAP_VALUE = "map_value"  # pointer to value_size initialised bytes
    MEM = "mem"  # pointer to readable memory, size in the next argument
    SIZE = "size"  # size of the preceding MEM argument
    CTX = "ctx"  # the program's context pointer
    # a scalar the format (the MEM argument) may read, as printf reads its values: it
    # may be left uninitialised when the format reads fewer (``HelperSpec.format_reads``)
    FORMAT_VALUE = "format_value"


class Ret(Enum):
    """Kinds of helper results."""

    SCALAR = "scalar"
    MAP_VALUE_OR_NULL = "map_value_or_null"
    VOID = "void"  # r0 is left unreadable


@dataclass(frozen=True)
class HelperSpec:
    id: int
    name: str
    args: tuple[Arg, ...]
    ret: Ret
    impl: Callable[..., int] | None = None  # host implementation: (vm, r1..r5) -> r0
    doc: str = ""
    # with FORMAT_VALUE arguments: how many of them (in order) the helper may read
    # given a format (the bytes the MEM argument points at, up to its size)
    format_reads: Callable[[bytes], int] | None = None


class HelperTable:
    """An immutable id -> HelperSpec table with name lookup."""

    def __init__(self, specs: Iterable[HelperSpec]) -> None:
        self._by_id: dict[int, HelperSpec] = {}
        self._by_name: dict[str, HelperSpec] = {}
        for spec in specs:
            if spec.id in self._by_id or spec.name in self._by_name:
                raise ValueError(f"duplicate helper {spec.id}/{spec.name}")
            self._by_id[spec.id] = spec
            self._by_name[spec.name] = spec

    def __contains__(self, helper_id: object) -> bool:
        return helper_id in self._by_id

    def __iter__(self) -> Iterator[HelperSpec]:
        return iter(sorted(self._by_id.values(), key=lambda s: s.id))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, helper_id: int) -> HelperSpec | None:
        return self._by_id.get(helper_id)

    def by_name(self, name: str) -> HelperSpec | None:
        return self._by_name.get(name)

    def extended(self, specs: Iterable[HelperSpec]) -> HelperTable:
        """A new table with ``specs`` added (replacing same ids)."""
        merged = {s.id: s for s in self}
        merged.update({s.id: s for s in specs})
        return HelperTable(merged.values())
