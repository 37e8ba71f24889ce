"""The placement hook's call, written for the program attached.

The placement hook runs on every user-page fault, so its call is made to
measure once per attach: :func:`placement_call` writes the source of a
function that stores exactly the context fields the attached program loads
(:meth:`HookPoint.needs <mmcore.hooks.dispatch.HookPoint.needs>`; the
fields that never change were written by the caller), runs the bound
engine and checks r0 against the number of nodes -- no per-call tests of
which fields to write, every constant folded in.  The function hands the
call back to ``generic`` (the MM core's own, which makes a new one) once
the hook point is stale (an attach, a detach, a packed call, a tiered
engine's move to the JIT).  What it writes is what
:meth:`MM.hook_placement <mmcore.mm.MM.hook_placement>` writes field by
field; the tests of the placement hook's fields hold both to the MM
core's state.  A program running on the JIT gets the compiled
call of :mod:`mmcore.hooks.placement_native` instead, which does the same
with no Python frame around the program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mmcore.hooks.dispatch import HookPoint, slot
from mmcore.hooks.specs import PLACEMENT

_U32 = (1 << 32) - 1
# each field the call may write: the statement storing it (proc, vma, order and home in scope)
_STORES = {
    "order": f"w32[{slot(PLACEMENT, 'order')}] = order",
    "pid": f"w32[{slot(PLACEMENT, 'pid')}] = proc.pid",
    "home_node": f"w32[{slot(PLACEMENT, 'home_node')}] = home",
    "hint": f"w32[{slot(PLACEMENT, 'hint')}] = vma.hint & {_U32}",
}
_FREE = slot(PLACEMENT, "free_node0")


def placement_call(hp: HookPoint, w32: memoryview, w64: memoryview,
                   node_zones: Sequence[tuple[Any, Any]], generic: Callable[..., int],
                   settle: Callable[[int, int], int]) -> Callable[[Any, Any, int], int]:
    """``call(proc, vma, order) -> node`` for the program attached to ``hp``:
    ``node_zones`` are the (normal, movable) zones of each node, ``generic``
    the call to hand back to when ``hp`` is stale (with the same
    arguments), ``settle(r0, home)`` the node for an r0 that is not one."""
    lines = ["def call(proc, vma, order):",
             f"    if words[1] or words[2] != {hp.generation}:  # stale, another engine",
             "        return generic(proc, vma, order)",
             "    words[0] += 1  # hp.calls",
             "    home = proc.home_node"]
    lines += [f"    {store}" for name, store in _STORES.items() if hp.needs(name)]
    # the engine is held: its bound row must not go to another engine while the call lives
    ns: dict[str, Any] = {"hp": hp, "engine": hp.engine, "words": hp.words, "fast": hp.fast,
                          "w32": w32, "w64": w64, "generic": generic, "settle": settle}
    if any(hp.needs(f"free_node{i}") for i in range(len(node_zones))):
        for i, (normal, movable) in enumerate(node_zones):
            ns[f"normal{i}"], ns[f"movable{i}"] = normal, movable
            lines.append(f"    w64[{_FREE + i}] = normal{i}.free_pages + movable{i}.free_pages")
    lines += ["    try:",
              "        r0 = fast()  # hp.fast (a move to the JIT makes hp stale)",
              "    except Exception as exc:  # an engine fault must never reach MM state",
              "        hp.failed(exc)",
              "        return home",
              f"    if r0 < {len(node_zones)}:  # nodes <= the hook's ret_max + 1",
              "        return r0",
              "    return settle(r0, home)"]
    source = f"def make({', '.join(ns)}):\n" + "\n".join(f"    {ln}" for ln in lines) + \
        "\n    return call\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<placement call>", "exec"), namespace)
    return namespace["make"](**ns)  # type: ignore[no-any-return]
