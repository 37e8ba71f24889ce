"""Address spaces of real processes: record ``/proc/PID/maps`` and replay it.

:func:`snapshot` reads ``/proc/PID/smaps`` of a live process and returns
its VMA lines exactly as ``/proc/PID/maps`` prints them, each followed by
``# rss_kb=N`` (the VMA's resident set), under a comment header naming the
process and the time of recording.  :func:`parse_maps` reads such a file,
or a plain ``/proc/PID/maps`` copy (then every page of every VMA counts as
resident), into :class:`MapsVma` records; VMAs at or above the canonical
user-space limit (``[vsyscall]``) are left out, as are VMAs with nothing
resident.  The study replays a file as a layout: every VMA at its recorded
address with 4 KiB pages, ``rss_kb / 4`` of its pages touched at random
(transparent huge pages and the resident pages' actual positions are not
recorded; this is the simplification).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from bpfvm.errors import BpfvmError
from bpfvm.limits import MAX_TEXT_FILE, read_bounded

USER_LIMIT = 1 << 47
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s")
_RSS = re.compile(r"#\s*rss_kb=(\d+)\s*$")


class MapsError(BpfvmError):
    """A maps file that cannot be read or parsed (message: ``file:line: what``)."""


@dataclass(frozen=True)
class MapsVma:
    start: int
    end: int
    perms: str
    path: str
    rss_kb: int | None  # None: not recorded (a plain maps file)

    @property
    def touched_pages(self) -> int:
        pages = (self.end - self.start) >> 12
        return pages if self.rss_kb is None else min(pages, self.rss_kb // 4)


def snapshot(pid: int, proc: Path = Path("/proc")) -> str:
    """The maps of ``pid`` with each VMA's resident set (see module doc)."""
    base = proc / str(pid)
    try:
        comm = (base / "comm").read_text().strip()
        smaps = (base / "smaps").read_text()
    except OSError as exc:
        raise MapsError(f"pid {pid}: cannot read {exc.filename}: {exc.strerror}") from None
    out = [f"# /proc/{pid}/maps of {comm!r}, recorded {time.strftime('%Y-%m-%d %H:%M:%S %z')} "
           "by bpfvm mm snapshot-maps; rss_kb from smaps"]
    line = None
    for raw in smaps.splitlines():
        if _HEADER.match(raw):
            line = raw.rstrip()
        elif raw.startswith("Rss:") and line is not None:
            out.append(f"{line}  # rss_kb={raw.split()[1]}")
            line = None
    return "\n".join(out) + "\n"


def parse_maps(text: str, file: str = "<maps>") -> list[MapsVma]:
    """The user-space VMAs with resident pages of a maps file."""
    vmas = []
    for n, raw in enumerate(text.splitlines(), 1):
        body = raw.strip()
        if not body or body.startswith("#"):
            continue
        m = _HEADER.match(body)
        if m is None:
            raise MapsError(f"{file}:{n}: not a maps line: {body[:60]!r}")
        start, end = int(m.group(1), 16), int(m.group(2), 16)
        if end <= start or start & 4095 or end & 4095:
            raise MapsError(f"{file}:{n}: bad range {m.group(1)}-{m.group(2)}")
        rss = _RSS.search(body)
        fields = _RSS.sub("", body).rstrip().split(maxsplit=5)
        vma = MapsVma(start, end, m.group(3), fields[5] if len(fields) > 5 else "",
                      int(rss.group(1)) if rss else None)
        if end <= USER_LIMIT and vma.touched_pages > 0:
            vmas.append(vma)
    vmas.sort(key=lambda v: v.start)
    for a, b in zip(vmas, vmas[1:], strict=False):
        if b.start < a.end:
            raise MapsError(f"{file}: VMAs {a.start:#x}-{a.end:#x} and {b.start:#x} overlap")
    if not vmas:
        raise MapsError(f"{file}: no user-space VMA with resident pages")
    return vmas


def read_maps(path: str | Path) -> list[MapsVma]:
    data = read_bounded(path, MAX_TEXT_FILE, "maps file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MapsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_maps(text, str(path))
