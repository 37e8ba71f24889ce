"""The MM hook records, re-exported from :mod:`bpfvm.hooks` (their one home).

``MM_HOOKS`` is every record the MM core's hook table holds, in the order
``bpfvm hooks`` lists them.  Nothing is defined here.
"""

from __future__ import annotations

from bpfvm.hooks import (
    HOOKS,
    HUGEPAGE,
    LIFETIME,
    MAX_CTX_NODES,
    PLACEMENT,
    PT_LOOKUP,
    PT_MAP,
    PT_UNMAP,
    RECLAIM,
    ZONE_RESIZE,
    canonical,
)
from bpfvm.hookspec import HookSpec

MM_HOOKS: tuple[HookSpec, ...] = tuple(HOOKS.values())

__all__ = [
    "HUGEPAGE", "LIFETIME", "MAX_CTX_NODES", "MM_HOOKS", "PLACEMENT", "PT_LOOKUP", "PT_MAP",
    "PT_UNMAP", "RECLAIM", "ZONE_RESIZE", "canonical",
]
