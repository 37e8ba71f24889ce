"""The synthetic snapshot the tests ship (``tests/data/snapshots/synthetic.npz``).

SYNTHETIC: made by this script, not recorded from a machine.  A 3 GiB
machine (786,432 frames, 1,536 pageblocks), laid out by hand so that every
count of ``bpfvm mm analyze`` is known without running it (the expected
values, written out in ``test_snapshot.py``, follow from this layout):

GiB 0 (pageblocks 0-511)
  block 0        pfns 0-255 KPF_RESERVED (kernel image), 256-511 anon
  blocks 1-9     all KPF_RESERVED
  blocks 10-19   one KPF_SLAB page at offset 7, the rest free (KPF_BUDDY)
  blocks 20-24   one KPF_PGTABLE page at offset 100, the rest file (LRU)
  block 25       a slab, a page-table and a flagless page, the rest anon
  blocks 26-29   4 bare compound-tail pages (kernel) at 0-3, the rest free
  blocks 30-99   free
  blocks 100-299 anon; blocks 100-199 as THPs (head + tails, KPF_THP)
  blocks 300-511 file: LRU|UPTODATE, except blocks 500-511 whose pages
                 are UPTODATE|DIRTY|PRIVATE only (page cache off the LRU)
GiB 1 (blocks 512-1023)
  blocks 512-767 a hole: outside iomem's System RAM, flags 0 (as recent
                 kernels report holes); iomem's RAM resumes 100 frames into
                 block 768, so block 768 holds a hole and free pages
  blocks 769-1023 free
GiB 2 (blocks 1024-1535), every page movable
  blocks 1024-1279 free; 1280-1407 anon; 1408-1535 file, except frames
  0-99 of block 1535, which are free

The text files (zoneinfo, buddyinfo, vmstat, iomem ...) are short and
consistent with the flags where it matters (iomem's ranges); buddyinfo's
numbers are made up.  Regenerate with
``python -m tests.mmcore.studies.synthetic_snapshot``.
"""

from __future__ import annotations

import numpy as np

from mmcore.phys.snapshot import (
    KPF_ANON,
    KPF_BUDDY,
    KPF_COMPOUND_HEAD,
    KPF_COMPOUND_TAIL,
    KPF_DIRTY,
    KPF_LRU,
    KPF_MMAP,
    KPF_PGTABLE,
    KPF_PRIVATE,
    KPF_RESERVED,
    KPF_SLAB,
    KPF_SWAPBACKED,
    KPF_THP,
    KPF_UPTODATE,
    Snapshot,
)
from tests.conftest import DATA

PATH = DATA / "snapshots" / "synthetic.npz"
FRAMES = 3 * 512 * 512
B = 512


def _f(*bits: int) -> int:
    return sum(1 << b for b in bits)


RESERVED = _f(KPF_RESERVED)
FREE = _f(KPF_BUDDY)
SLAB = _f(KPF_SLAB)
PGTABLE = _f(KPF_PGTABLE)
ANON = _f(KPF_ANON, KPF_LRU, KPF_MMAP, KPF_SWAPBACKED, KPF_UPTODATE)
FILE = _f(KPF_LRU, KPF_UPTODATE)
FILE_OFF_LRU = _f(KPF_UPTODATE, KPF_DIRTY, KPF_PRIVATE)
KERNEL_TAIL = _f(KPF_COMPOUND_TAIL)

IOMEM = """\
00000000-00000fff : Reserved
00001000-3fffffff : System RAM
  01000000-01ffffff : Kernel code
40000000-5fffffff : PCI Bus 0000:00
{ram1:08x}-bfffffff : System RAM
"""
ZONEINFO = """\
Node 0, zone   Normal
  pages free     300000
  pagesets
    cpu: 0
              count:    40
              high:     100
    cpu: 1
              count:    2
              high:     100
  start_pfn:           0
"""
BUDDYINFO = ("Node 0, zone   Normal      3      1      0      0      0      0      0      0      0"
             "      1    320 \n")
VMSTAT = """\
nr_free_pages 300000
nr_slab_reclaimable 10
nr_slab_unreclaimable 2
nr_page_table_pages 6
nr_anon_pages 160000
nr_file_pages 180000
pgfault 12345
"""


def build() -> Snapshot:
    f = np.zeros(FRAMES, dtype=np.uint64)

    def blocks(lo: int, hi: int, value: int) -> None:
        f[lo * B:hi * B] = value

    # GiB 0
    f[0:256] = RESERVED
    f[256:512] = ANON
    blocks(1, 10, RESERVED)
    blocks(10, 20, FREE)
    for b in range(10, 20):
        f[b * B + 7] = SLAB
    blocks(20, 25, FILE)
    for b in range(20, 25):
        f[b * B + 100] = PGTABLE
    blocks(25, 26, ANON)
    f[25 * B + 0] = SLAB
    f[25 * B + 1] = PGTABLE
    f[25 * B + 2] = 0  # flagless kernel page
    blocks(26, 30, FREE)
    for b in range(26, 30):
        f[b * B:b * B + 4] = KERNEL_TAIL
    blocks(30, 100, FREE)
    blocks(100, 300, ANON)
    thp = _f(KPF_THP)
    for b in range(100, 200):
        f[b * B:(b + 1) * B] |= thp | _f(KPF_COMPOUND_TAIL)
        f[b * B] = ANON | thp | _f(KPF_COMPOUND_HEAD)
    blocks(300, 500, FILE)
    blocks(500, 512, FILE_OFF_LRU)
    # GiB 1: blocks 512-767 stay 0 (the hole); RAM from 100 frames into block 768
    blocks(768, 1024, FREE)
    f[768 * B:768 * B + 100] = 0
    # GiB 2
    blocks(1024, 1280, FREE)
    blocks(1280, 1408, ANON)
    blocks(1408, 1536, FILE)
    f[1535 * B:1535 * B + 100] = FREE
    ram1 = (768 * B + 100) << 12
    texts = {"iomem": IOMEM.format(ram1=ram1), "zoneinfo": ZONEINFO, "buddyinfo": BUDDYINFO,
             "vmstat": VMSTAT, "pagetypeinfo": "", "meminfo": ""}
    return Snapshot(flags=f, pfn0=0, origin="synthetic", texts=texts, kernel="synthetic",
                    note="synthetic: tests/mmcore/studies/synthetic_snapshot.py (3 GiB, "
                         "layout in its docstring)")


def main() -> None:
    from mmcore.phys.snapshot import save

    PATH.parent.mkdir(parents=True, exist_ok=True)
    save(build(), PATH)
    print(f"{PATH}: {PATH.stat().st_size} bytes")


if __name__ == "__main__":
    main()
