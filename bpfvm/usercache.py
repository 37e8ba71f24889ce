"""Files bpfvm can rebuild, kept between runs in ``$XDG_CACHE_HOME/bpfvm``
(default ``~/.cache/bpfvm``): the assembler's compiled grammar, the C
header, compiled native code.

Entries are named by a hash of everything they are built from, so a
changed input gets a new file, never a stale one; they are written
atomically (a temporary file renamed into place), so a process never reads
half of one.  A cache that cannot be written costs only the rebuild.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    """Where bpfvm keeps files it can rebuild: ``$XDG_CACHE_HOME/bpfvm``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bpfvm"


def digest(*parts: str) -> str:
    """A short name for the inputs ``parts``."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file renamed into
    place; False (and nothing left behind) when that cannot be done."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        return False
    return True


def read_checked(path: Path) -> bytes | None:
    """The payload of a file written by :func:`write_checked`, or None when
    it is missing, unreadable, truncated or damaged."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    head, body = raw[:32], raw[32:]
    return body if len(raw) >= 32 and hashlib.sha256(body).digest() == head else None


def write_checked(path: Path, data: bytes) -> bool:
    """:func:`write_atomic` of ``data`` behind its SHA-256, for payloads
    that must not be used damaged (native code)."""
    return write_atomic(path, hashlib.sha256(data).digest() + data)
