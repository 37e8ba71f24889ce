"""Errors of the MM core.

User-caused errors (a bad scenario file, a region that cannot be found)
derive from :class:`bpfvm.errors.BpfvmError` so the CLI prints them without a
traceback and exits with their ``exit_code``.  :class:`InvariantError` is a
bug of ours: the check mode found MM state that must never exist.
"""

from __future__ import annotations

from bpfvm.errors import BpfvmError


class ScenarioError(BpfvmError):
    """A bad scenario file: ``file: key: message``."""

    def __init__(self, file: str, key: str, message: str) -> None:
        super().__init__(f"{file}: {key}: {message}")
        self.file, self.key, self.message = file, key, message


class RegionError(BpfvmError):
    """No physically contiguous run of the requested size is free."""

    exit_code = 1


class OutOfMemoryError(BpfvmError):
    """No memory for a new process, even after reclaim and the OOM killer
    (what fork reports as -ENOMEM)."""

    exit_code = 1


class PageTableError(Exception):
    """A page-table implementation could not place or find a PTE."""


class InvariantError(AssertionError):
    """MM state violates an invariant (a bug in the MM core)."""
