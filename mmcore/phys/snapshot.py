"""Snapshots of a real machine's physical memory, and the class of every page.

A snapshot is what ``bpfvm mm snapshot`` records on a running Linux machine:
the flags of every page frame from ``/proc/kpageflags`` and the text of
``/proc/zoneinfo``, ``/proc/pagetypeinfo``, ``/proc/buddyinfo``,
``/proc/iomem``, ``/proc/vmstat`` and ``/proc/meminfo``, read one after the
other (kpageflags first, the counters straight after it).  Reading it needs
root (the files are mode 0400 and ``/proc/iomem`` shows zero addresses to
other users).

File format (``bpfvm-snapshot/1``)
----------------------------------
A NumPy ``.npz`` archive (zip, deflate-compressed), loaded without pickles:

``format``  the string ``bpfvm-snapshot/1``;
``flags``   uint64 per frame: the raw 64-bit word /proc/kpageflags gave for
            pfn ``pfn0 + i`` (a 24 GiB machine: 6.5 M frames, 52 MB raw,
            a few MB compressed);
``pfn0``    int64, the first frame's pfn (0 for a whole machine; an excerpt
            starts at a multiple of 512);
``origin``  ``recorded`` (read from a machine) or ``synthetic`` (made by a
            script; the shipped test snapshot says which script);
``text_*``  one string per /proc file (``text_zoneinfo``, ``text_iomem`` ...;
            empty when the file could not be read), ``kernel`` (the release)
            and ``note``.

The class of a page (:func:`classify`)
--------------------------------------
Flag bits are those of ``include/uapi/linux/kernel-page-flags.h``.  Since
Linux 4.x, ``fs/proc/page.c`` reports flags of the page's folio (a tail
page of a THP, a slab or a large page-cache folio carries its head's LRU,
ANON, SLAB bits) and sets KPF_BUDDY on *every* page of a free buddy block
(``is_free_buddy_page``), not only on its head.  The rules, first match wins:

1. ``hole``: the frame lies outside every ``System RAM`` range of
   ``/proc/iomem`` (when the snapshot has usable addresses), or has
   KPF_NOPAGE.  Holes read as flags 0 on recent kernels, so iomem decides.
2. ``free``: KPF_BUDDY.  Free pages on the per-cpu lists are *not* marked
   (they look like any flagless page, rule 8); ``analyze`` reports the
   kernel's per-cpu count from zoneinfo beside the classes to bound them.
3. ``reserved``: KPF_RESERVED (kernel image, memblock reservations, the
   memmap, firmware ranges), or KPF_OFFLINE (logically offline: balloon or
   hot-unplug), or KPF_HWPOISON.
4. ``slab``: KPF_SLAB.
5. ``pgtable``: KPF_PGTABLE.
6. ``anon``: KPF_ANON (includes anonymous THPs and KSM pages), or KPF_HUGE
   (hugetlbfs: user memory).
7. ``file``: on an LRU list (KPF_LRU), mapped by a process (KPF_MMAP), or
   carrying page-cache state (KPF_UPTODATE, DIRTY, WRITEBACK, SWAPCACHE,
   SWAPBACKED, UNEVICTABLE, MLOCKED, MAPPEDTODISK, PRIVATE): page-cache and
   other LRU pages, including those briefly off the LRU.
8. ``kernel_other``: everything else: flagless pages (vmalloc backing,
   kernel stacks, network buffers, page-pool pages, and the per-cpu lists'
   free pages, which /proc cannot tell apart), bare compound pages
   (KPF_COMPOUND_HEAD/TAIL only), the zero page, and any combination the
   rules above do not name.

``reserved``, ``slab``, ``pgtable`` and ``kernel_other`` are *unmovable*:
compaction cannot move them.  ``anon``, ``file`` and ``free`` are movable
(an ideal compaction can empty a block of them).  ``hole`` is neither: a
block with a hole in it can never be a huge page.
"""

from __future__ import annotations

import io
import os
import platform
import re
import sys
import time
import zipfile
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

from bpfvm.errors import BpfvmError

FORMAT = "bpfvm-snapshot/1"
TEXTS = ("zoneinfo", "pagetypeinfo", "buddyinfo", "iomem", "vmstat", "meminfo")
CHUNK_FRAMES = 64 * 1024  # frames per read of /proc/kpageflags (it refuses one huge read)
MAX_FRAMES = 1 << 30  # 4 TiB of 4 KiB frames: the largest snapshot we load
MAX_TEXT = 16 << 20  # characters of each /proc text we keep or load
PAGE_SHIFT = 12

# include/uapi/linux/kernel-page-flags.h (bits 32+ from fs/proc/internal.h's
# "kernel hacking assistances", exported as well)
KPF_LOCKED, KPF_ERROR, KPF_REFERENCED, KPF_UPTODATE, KPF_DIRTY = 0, 1, 2, 3, 4
KPF_LRU, KPF_ACTIVE, KPF_SLAB, KPF_WRITEBACK, KPF_RECLAIM = 5, 6, 7, 8, 9
KPF_BUDDY, KPF_MMAP, KPF_ANON, KPF_SWAPCACHE, KPF_SWAPBACKED = 10, 11, 12, 13, 14
KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_HUGE, KPF_UNEVICTABLE = 15, 16, 17, 18
KPF_HWPOISON, KPF_NOPAGE, KPF_KSM, KPF_THP, KPF_OFFLINE = 19, 20, 21, 22, 23
KPF_ZERO_PAGE, KPF_IDLE, KPF_PGTABLE = 24, 25, 26
KPF_RESERVED, KPF_MLOCKED, KPF_MAPPEDTODISK, KPF_PRIVATE = 32, 33, 34, 35


class PageClass(IntEnum):
    """The class code stored per frame (uint8)."""

    FREE = 0
    ANON = 1
    FILE = 2
    SLAB = 3
    PGTABLE = 4
    RESERVED = 5
    KERNEL_OTHER = 6
    HOLE = 7


CLASS_NAMES = ("free", "anon", "file", "slab", "pgtable", "reserved", "kernel_other", "hole")
UNMOVABLE = (PageClass.RESERVED, PageClass.SLAB, PageClass.PGTABLE, PageClass.KERNEL_OTHER)
MOVABLE = (PageClass.ANON, PageClass.FILE, PageClass.FREE)


def _mask(*bits: int) -> np.uint64:
    return np.uint64(sum(1 << b for b in bits))


FILE_BITS = _mask(KPF_LRU, KPF_MMAP, KPF_UPTODATE, KPF_DIRTY, KPF_WRITEBACK, KPF_SWAPCACHE,
                  KPF_SWAPBACKED, KPF_UNEVICTABLE, KPF_MLOCKED, KPF_MAPPEDTODISK, KPF_PRIVATE)


class SnapshotError(BpfvmError):
    """A snapshot cannot be recorded or read: ``FILE: what``."""


@dataclass
class Snapshot:
    flags: np.ndarray  # uint64 per frame
    pfn0: int = 0
    origin: str = "recorded"
    texts: dict[str, str] = field(default_factory=dict)
    kernel: str = ""
    note: str = ""
    source: str = "(memory)"  # where it was read from, for messages

    @property
    def frames(self) -> int:
        return int(self.flags.size)

    def ram_mask(self) -> np.ndarray | None:
        """Per frame, whether iomem calls it System RAM (None: iomem unusable)."""
        ranges = ram_ranges(self.texts.get("iomem", ""))
        if not ranges:
            return None
        mask = np.zeros(self.frames, dtype=bool)
        for start, end in ranges:  # byte addresses, inclusive end
            lo = max((start >> PAGE_SHIFT) - self.pfn0, 0)
            hi = min((end >> PAGE_SHIFT) + 1 - self.pfn0, self.frames)
            if hi > lo:
                mask[lo:hi] = True
        return mask

    def classes(self) -> np.ndarray:
        return classify(self.flags, self.ram_mask())


def classify(flags: np.ndarray, ram: np.ndarray | None = None) -> np.ndarray:
    """The :class:`PageClass` code (uint8) of every frame, by the rules of the
    module docstring.  ``ram``: per frame, inside System RAM (None: unknown)."""
    f = np.asarray(flags, dtype=np.uint64)
    out = np.full(f.shape, PageClass.KERNEL_OTHER, dtype=np.uint8)

    def has(*bits: int) -> np.ndarray:
        return (f & _mask(*bits)) != 0

    # Assign from the last rule to the first so that the first match wins.
    out[(f & FILE_BITS) != 0] = PageClass.FILE
    out[has(KPF_ANON, KPF_HUGE)] = PageClass.ANON
    out[has(KPF_PGTABLE)] = PageClass.PGTABLE
    out[has(KPF_SLAB)] = PageClass.SLAB
    out[has(KPF_RESERVED, KPF_OFFLINE, KPF_HWPOISON)] = PageClass.RESERVED
    out[has(KPF_BUDDY)] = PageClass.FREE
    hole = has(KPF_NOPAGE)
    if ram is not None:
        hole |= ~ram
    out[hole] = PageClass.HOLE
    return out


_IOMEM = re.compile(r"^([0-9a-fA-F]+)-([0-9a-fA-F]+) : System RAM\s*$")


def ram_ranges(iomem: str) -> list[tuple[int, int]]:
    """Top-level ``System RAM`` ranges of /proc/iomem as (start, end) byte
    addresses, end inclusive; empty when there are none or the addresses are
    all zero (what a non-root reader sees)."""
    out = []
    for line in iomem.splitlines():
        m = _IOMEM.match(line)  # top level only: nested lines are indented
        if m:
            out.append((int(m.group(1), 16), int(m.group(2), 16)))
    if all(s == 0 and e == 0 for s, e in out):
        return []
    return out


# ---- recording ---------------------------------------------------------------------------
def record(proc: str | Path = "/proc") -> Snapshot:
    """Read this machine's page flags and memory files (needs Linux and root)."""
    proc = Path(proc)
    path = proc / "kpageflags"
    if not sys.platform.startswith("linux") and str(proc) == "/proc":
        raise SnapshotError(f"snapshot: needs Linux (/proc/kpageflags); this is {sys.platform}")
    flags = read_kpageflags(path)
    texts = {name: _read_text(proc / name) for name in TEXTS}
    return Snapshot(flags=flags, pfn0=0, origin="recorded", texts=texts,
                    kernel=platform.release(),
                    note=f"recorded {time.strftime('%Y-%m-%d %H:%M:%S %z')}")


def read_kpageflags(path: str | Path, chunk: int = CHUNK_FRAMES) -> np.ndarray:
    """Every 8-byte word of ``path`` (/proc/kpageflags), read ``chunk`` frames
    at a time with pread until the file ends."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file (needs Linux with CONFIG_PROC_PAGE_MONITOR)"
                            ) from None
    except PermissionError:
        raise SnapshotError(f"{path}: permission denied: recording a snapshot needs root "
                            "(CAP_SYS_ADMIN)") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot open: {exc.strerror or exc}") from None
    parts: list[bytes] = []
    offset = 0
    try:
        while offset < MAX_FRAMES * 8:
            try:
                data = os.pread(fd, chunk * 8, offset)
            except PermissionError:
                raise SnapshotError(f"{path}: permission denied: recording a snapshot needs "
                                    "root (CAP_SYS_ADMIN)") from None
            except OSError as exc:
                raise SnapshotError(f"{path}: cannot read at frame {offset // 8}: "
                                    f"{exc.strerror or exc}") from None
            if not data:
                break
            parts.append(data)
            offset += len(data)
    finally:
        os.close(fd)
    raw = b"".join(parts)
    if not raw:
        raise SnapshotError(f"{path}: read no frames (not root, or no page flags exported)")
    if len(raw) % 8:
        raise SnapshotError(f"{path}: {len(raw)} bytes, not a whole number of 8-byte words")
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(MAX_TEXT)
    except OSError:
        return ""


# ---- the file ----------------------------------------------------------------------------
def to_bytes(snap: Snapshot) -> bytes:
    """The snapshot as a compressed ``.npz`` archive."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "flags": np.ascontiguousarray(snap.flags, dtype="<u8"),
        "pfn0": np.array(snap.pfn0, dtype=np.int64),
        "origin": np.array(snap.origin),
        "kernel": np.array(snap.kernel),
        "note": np.array(snap.note),
    }
    for name in TEXTS:
        arrays[f"text_{name}"] = np.array(snap.texts.get(name, ""))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def save(snap: Snapshot, path: str | Path) -> None:
    Path(path).write_bytes(to_bytes(snap))


def load(path: str | Path) -> Snapshot:
    """Read a snapshot file; every problem is a :class:`SnapshotError` naming it."""
    where = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise SnapshotError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise SnapshotError(f"{where}: is a directory") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            "not a snapshot (expected a .npz archive from bpfvm mm snapshot)"
        raise SnapshotError(f"{where}: {why}") from None
    with zf:
        names = set(zf.namelist())
        fmt = _member(zf, names, where, "format", "U", 0, 64)
        if str(fmt) != FORMAT:
            raise SnapshotError(f"{where}: format: expected '{FORMAT}', got {str(fmt)[:40]!r}")
        flags = _member(zf, names, where, "flags", "u8", 1, MAX_FRAMES)
        pfn0 = int(_member(zf, names, where, "pfn0", "i8", 0, 1))
        if pfn0 < 0 or pfn0 % 512 or pfn0 >= 1 << 40:
            raise SnapshotError(f"{where}: pfn0: {pfn0} is not a multiple of 512 in range")
        if flags.size == 0:
            raise SnapshotError(f"{where}: flags: no frames")
        origin = str(_member(zf, names, where, "origin", "U", 0, 64))
        if origin not in ("recorded", "synthetic"):
            raise SnapshotError(f"{where}: origin: expected 'recorded' or 'synthetic', "
                                f"got {origin[:40]!r}")
        texts = {}
        for name in TEXTS:
            key = f"text_{name}"
            texts[name] = str(_member(zf, names, where, key, "U", 0, MAX_TEXT)) \
                if f"{key}.npy" in names else ""
        kernel = str(_member(zf, names, where, "kernel", "U", 0, 4096)) \
            if "kernel.npy" in names else ""
        note = str(_member(zf, names, where, "note", "U", 0, MAX_TEXT)) \
            if "note.npy" in names else ""
    return Snapshot(flags=flags.astype(np.uint64, copy=False), pfn0=pfn0, origin=origin,
                    texts=texts, kernel=kernel, note=note, source=where)


def _member(zf: zipfile.ZipFile, names: set[str], where: str, key: str, kind: str,
            ndim: int, limit: int) -> np.ndarray:
    """Member ``key`` of the archive, its header checked (kind, rank, size)
    before its data is read, so a corrupt or hostile file costs nothing."""
    member = f"{key}.npy"
    if member not in names:
        raise SnapshotError(f"{where}: {key}: missing (not a bpfvm snapshot?)")
    try:
        with zf.open(member) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            bad = len(shape) != ndim or dtype.hasobject or \
                (kind == "U" and dtype.kind != "U") or \
                (kind != "U" and dtype != np.dtype("<" + kind))
            if bad:
                raise SnapshotError(f"{where}: {key}: expected a {ndim}-d {kind} array, "
                                    f"got {len(shape)}-d {dtype}")
            size = dtype.itemsize // 4 if kind == "U" else int(np.prod(shape, dtype=np.int64))
            if size > limit:
                raise SnapshotError(f"{where}: {key}: {size} items, more than the limit "
                                    f"{limit}")
        with zf.open(member) as fh:
            arr = np.lib.format.read_array(fh, allow_pickle=False)
    except SnapshotError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile,
            RuntimeError, KeyError) as exc:  # zlib.error is an Exception subclass below
        raise SnapshotError(f"{where}: {key}: corrupt ({str(exc)[:80]})") from None
    except Exception as exc:  # zlib.error and friends from a damaged archive
        if type(exc).__module__ in ("zlib", "zipfile", "numpy"):
            raise SnapshotError(f"{where}: {key}: corrupt ({str(exc)[:80]})") from None
        raise
    return arr
