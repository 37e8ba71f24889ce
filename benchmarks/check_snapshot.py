"""Do ``bpfvm mm analyze``'s counts agree with an independent reading of
/proc/kpageflags?  Run as root on a Linux machine:

    python benchmarks/check_snapshot.py [--keep DIR]

What it does, in order:

1. reads /proc/kpageflags itself (plain ``read`` of 1 MiB pieces, no NumPy:
   the *before* reading);
2. runs the real command line, ``bpfvm mm snapshot -o S.npz`` then
   ``bpfvm mm analyze S.npz --json A.json``;
3. reads /proc/kpageflags again (the *after* reading);
4. classifies pages with its own pure-Python implementation of the rules of
   ``mmcore/phys/snapshot.py`` (written separately: a per-word function
   over the flag bits, iomem parsed here) and counts pageblocks with plain
   loops, on three inputs: the raw words stored in S.npz (read with
   ``numpy.load``, not the project's loader), the before and the after
   readings.

The words in S.npz are the snapshot's own moment, so on them every count
must be *equal* to analyze's (exit 1 otherwise); the before/after readings
bracket the snapshot by a few seconds and show how far a live machine moves
in that time.  It also prints the kernel's own counters (/proc/vmstat,
read right after the snapshot) beside the page classes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BIT = {"BUDDY": 10, "RESERVED": 32, "OFFLINE": 23, "HWPOISON": 19, "SLAB": 7, "PGTABLE": 26,
       "ANON": 12, "HUGE": 17, "NOPAGE": 20, "LRU": 5, "MMAP": 11, "UPTODATE": 3, "DIRTY": 4,
       "WRITEBACK": 8, "SWAPCACHE": 13, "SWAPBACKED": 14, "UNEVICTABLE": 18, "MLOCKED": 33,
       "MAPPEDTODISK": 34, "PRIVATE": 35}
FILEISH = ("LRU", "MMAP", "UPTODATE", "DIRTY", "WRITEBACK", "SWAPCACHE", "SWAPBACKED",
           "UNEVICTABLE", "MLOCKED", "MAPPEDTODISK", "PRIVATE")
UNMOVABLE = ("slab", "pgtable", "reserved", "kernel_other")


def kind(word: int) -> str:
    """The class of one kpageflags word (holes by iomem are decided by the caller)."""
    def on(name: str) -> bool:
        return bool(word >> BIT[name] & 1)

    if on("NOPAGE"):
        return "hole"
    if on("BUDDY"):
        return "free"
    if on("RESERVED") or on("OFFLINE") or on("HWPOISON"):
        return "reserved"
    if on("SLAB"):
        return "slab"
    if on("PGTABLE"):
        return "pgtable"
    if on("ANON") or on("HUGE"):
        return "anon"
    if any(on(n) for n in FILEISH):
        return "file"
    return "kernel_other"


def read_proc() -> bytes:
    out = bytearray()
    with open("/proc/kpageflags", "rb", buffering=0) as f:
        while True:
            piece = f.read(1 << 20)
            if not piece:
                return bytes(out)
            out += piece


def ram_pfns(iomem: str) -> list[tuple[int, int]]:
    """[first pfn, last pfn] of each top-level System RAM line."""
    out = []
    for line in iomem.splitlines():
        if line.startswith(" ") or not line.rstrip().endswith(": System RAM"):
            continue
        lo, hi = line.split(" : ")[0].split("-")
        out.append((int(lo, 16) >> 12, int(hi, 16) >> 12))
    return out


def count(words: list[int] | tuple[int, ...], ram: list[tuple[int, int]]) -> dict:
    n = len(words)
    is_ram = bytearray(n)
    for lo, hi in ram:
        for p in range(lo, min(hi, n - 1) + 1):
            is_ram[p] = 1
    cache: dict[int, str] = {}
    pages = dict.fromkeys(("free", "anon", "file", "slab", "pgtable", "reserved",
                           "kernel_other", "hole"), 0)
    tainted = dict.fromkeys((*UNMOVABLE, "any_unmovable"), 0)
    pageblocks = obtainable = free_blocks = 0
    clean_blocks = []
    for start in range(0, n, 512):
        seen: set[str] = set()
        nfree = 0
        for p in range(start, min(start + 512, n)):
            if not is_ram[p]:
                k = "hole"
            else:
                w = words[p]
                k = cache.get(w)
                if k is None:
                    k = cache[w] = kind(w)
            pages[k] += 1
            seen.add(k)
            nfree += k == "free"
        if start + 512 > n:
            seen.add("hole")
        if seen == {"hole"}:
            clean_blocks.append(False)
            continue
        pageblocks += 1
        for u in UNMOVABLE:
            tainted[u] += u in seen
        dirty = any(u in seen for u in UNMOVABLE)
        tainted["any_unmovable"] += dirty
        clean = not dirty and "hole" not in seen
        obtainable += clean
        free_blocks += nfree == 512
        clean_blocks.append(clean)
    giga = sum(all(clean_blocks[g:g + 512]) for g in range(0, len(clean_blocks) - 511, 512))
    return {"pages": pages, "pageblocks": pageblocks, "tainted": tainted,
            "obtainable_2m": obtainable, "obtainable_1g": giga, "free_now_2m": free_blocks}


def flat(r: dict) -> dict[str, int]:
    out = {"pageblocks": r["pageblocks"]}
    out.update({f"tainted.{k}": v for k, v in r["tainted"].items()})
    if "obtainable" in r:  # analyze's JSON
        out["obtainable.2m"], out["obtainable.1g"] = r["obtainable"]["2m"], r["obtainable"]["1g"]
        out["free_now.2m"] = r["free_now"]["2m"]
    else:
        out["obtainable.2m"], out["obtainable.1g"] = r["obtainable_2m"], r["obtainable_1g"]
        out["free_now.2m"] = r["free_now_2m"]
    out.update({f"pages.{k}": v for k, v in r["pages"].items()})
    return out


def snapshot_words(path: Path) -> tuple[tuple[int, ...], str]:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        raw = z["flags"].astype("<u8").tobytes()
        iomem = str(z["text_iomem"])
    return struct.unpack(f"<{len(raw) // 8}Q", raw), iomem


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", metavar="DIR", help="keep the snapshot and analyze JSON here")
    args = ap.parse_args()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        print("check_snapshot: needs root on Linux (/proc/kpageflags)", file=sys.stderr)
        return 2
    work = Path(args.keep or tempfile.mkdtemp(prefix="check_snapshot."))
    work.mkdir(parents=True, exist_ok=True)
    snap, js = work / "snapshot.npz", work / "analyze.json"
    bpfvm = [sys.executable, "-m", "bpfvm.cli"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    t0 = time.monotonic()
    before = read_proc()
    t1 = time.monotonic()
    subprocess.run([*bpfvm, "mm", "snapshot", "-o", str(snap)], check=True, env=env)
    t2 = time.monotonic()
    after = read_proc()
    t3 = time.monotonic()
    vmstat = Path("/proc/vmstat").read_text()
    iomem_now = Path("/proc/iomem").read_text()
    subprocess.run([*bpfvm, "mm", "analyze", str(snap), "--json", str(js)], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    analyzed = json.loads(js.read_text())

    words, iomem = snapshot_words(snap)
    ram = ram_pfns(iomem)
    same = count(words, ram)
    ram_now = ram_pfns(iomem_now)
    rb = count(struct.unpack(f"<{len(before) // 8}Q", before), ram_now)
    ra = count(struct.unpack(f"<{len(after) // 8}Q", after), ram_now)

    a, s, b, f = flat(analyzed), flat(same), flat(rb), flat(ra)
    print(f"frames {len(words)}; before read {t1 - t0:.1f}s, snapshot command "
          f"{t2 - t1:.1f}s, after read {t3 - t2:.1f}s")
    head = f"{'count':24} {'analyze':>10} {'same words':>11} {'before':>10} {'after':>10}"
    print(head)
    print("-" * len(head))
    mismatches = 0
    for key in a:
        ok = a[key] == s[key]
        mismatches += not ok
        print(f"{key:24} {a[key]:>10} {s[key]:>11}{'' if ok else ' !='} {b[key]:>10} "
              f"{f[key]:>10}")
    counters = {k: int(v) for k, v in re.findall(r"^(nr_\w+) (\d+)$", vmstat, re.M)}
    print("\nkernel counters right after the snapshot (pages) vs the snapshot's classes:")
    p = analyzed["pages"]
    pcp = analyzed["kernel_counters"].get("pcp_free_pages", 0)
    rows = [("free", p["free"], counters.get("nr_free_pages"), "nr_free_pages"),
            ("slab", p["slab"], counters.get("nr_slab_reclaimable", 0)
             + counters.get("nr_slab_unreclaimable", 0), "nr_slab_reclaimable+unreclaimable"),
            ("pgtable", p["pgtable"], counters.get("nr_page_table_pages"), "nr_page_table_pages"),
            ("anon", p["anon"], counters.get("nr_anon_pages"), "nr_anon_pages"),
            ("file", p["file"], counters.get("nr_file_pages"), "nr_file_pages"),
            ("kernel_other", p["kernel_other"], pcp, "per-cpu free pages (zoneinfo count:)")]
    for name, ours, theirs, what in rows:
        print(f"  {name:13} {ours:>9}   {what} {theirs}")
    drift = {k: (b[k], f[k]) for k in a if not min(b[k], f[k]) <= a[k] <= max(b[k], f[k])}
    print(f"\nsame words: {len(a) - mismatches}/{len(a)} counts equal"
          f"{' (MISMATCH)' if mismatches else ''}; counts outside the before/after bracket: "
          f"{len(drift)} ({', '.join(drift) or 'none'})")
    print(f"files in {work}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
