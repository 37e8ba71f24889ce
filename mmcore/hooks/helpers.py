"""MM helper records (ids >= 1000): what policy programs may ask the MM core.

The records are data, like the hook records, so every tool knows them: the
assembler resolves ``call mm_node_free_pages``, the verifier checks the
arguments, the disassembler prints the names.  Each implementation calls the
method of the same name on the engine's host environment (``vm.env``); the
MM core's environment provides them, and a program run outside the MM core
faults cleanly when it calls one.  The helpers only read MM state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bpfvm.helpers import Arg, HelperSpec, HelperTable, Ret
from bpfvm.stdhelpers import standard_helpers

_ANY = Arg.ANYTHING


def _host(name: str, nargs: int) -> Callable[..., int]:
    """An implementation forwarding the first ``nargs`` registers to ``vm.env.<name>``."""

    def impl(vm: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        method = getattr(vm.env, name, None)
        if method is None:
            raise RuntimeError(f"helper {name} needs the MM core's host environment (MmEnv)")
        return int(method(*(r1, r2, r3, r4, r5)[:nargs]))

    impl.__name__ = name
    return impl


def _spec(helper_id: int, name: str, args: tuple[Arg, ...], doc: str) -> HelperSpec:
    return HelperSpec(helper_id, name, args, Ret.SCALAR, _host(name, len(args)), doc)


MM_HELPER_SPECS: tuple[HelperSpec, ...] = (
    _spec(1000, "mm_node_free_pages", (_ANY,), "free pages on node r1 (0 for no such node)"),
    _spec(1001, "mm_node_distance", (_ANY, _ANY),
          "distance from node r1 to node r2 (10 local; 0 for no such node)"),
    _spec(1002, "mm_free_blocks", (_ANY, _ANY),
          "free buddy blocks of order r2 or larger on node r1"),
    _spec(1003, "mm_proc_rss", (_ANY,),
          "resident pages (4 KiB units) of process r1 (0 for no such process)"),
    _spec(1004, "mm_proc_huge", (_ANY, _ANY),
          "huge pages of size r2 (1 = 2 MiB, 2 = 1 GiB) process r1 holds"),
    _spec(1005, "mm_tick", (), "the current scenario tick"),
)


def policy_helpers() -> HelperTable:
    """The standard helpers plus the MM helpers: the default table of every tool."""
    return standard_helpers().extended(MM_HELPER_SPECS)
