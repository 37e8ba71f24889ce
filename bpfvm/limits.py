"""Sizes with units, and the limits on what a user may hand us.

One parser for every size a user writes: scenario keys, ``--object
NAME=SIZE``, ``--ctx-size``.  A size is a plain integer (bytes) or a string
such as ``"64KiB"``, ``"2 GiB"``, ``"512M"`` (binary units: K, M, G, T, P,
with an optional ``iB``/``B``).  A number is written with at most 20 digits,
so a hostile literal never reaches ``int()``.

Every file a command reads goes through :func:`read_bounded`, which stops
after its limit: an endless file (``/dev/zero``) or a huge one is refused
with the limit named instead of being read until memory runs out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bpfvm.errors import BpfvmError

MAX_PROGRAM_FILE = 64 << 20  # assembly, raw bytecode or object file
MAX_INPUT_FILE = 64 << 20  # an input buffer (--mem-file)
MAX_TEXT_FILE = 4 << 20  # scenarios, conformance vectors, other small text files
MAX_OBJECT_SIZE = 1 << 30  # a context buffer or a hook object (.object, --object, --ctx-size)

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"^\s*(\d{1,20})\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE)
_NAMES = ((1 << 50, "PiB"), (1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def parse_size(v: Any) -> int:
    """Bytes from an integer or a string with a unit; ValueError or
    TypeError (with a message fit for the user) otherwise."""
    if isinstance(v, bool):
        raise TypeError("expected a size")
    if isinstance(v, int):
        n = v
    elif isinstance(v, str) and (m := _SIZE.match(v)):
        n = int(m.group(1).lstrip("0") or "0") * _UNITS[m.group(2).lower()]
    else:
        shown = v if not isinstance(v, str) or len(v) <= 40 else v[:40] + "..."
        raise ValueError(f"expected a size such as 512MiB, got {shown!r}")
    if n < 0:
        raise ValueError("size must not be negative")
    return n


def format_size(n: int) -> str:
    """``n`` bytes in the largest binary unit that divides it (``64KiB``)."""
    for unit, name in _NAMES:
        if n >= unit and n % unit == 0:
            return f"{n // unit}{name}"
    return f"{n}B"


def read_bounded(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of ``path``, at most ``limit`` of them: a longer (or endless)
    file is a :class:`BpfvmError` naming the limit.  Errors read
    ``path: message``."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise BpfvmError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BpfvmError(f"{path}: is a directory") from None
    except OSError as exc:
        raise BpfvmError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise BpfvmError(f"{path}: {what} larger than the limit of {format_size(limit)}")
    return data
