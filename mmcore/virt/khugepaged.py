"""khugepaged (``mm/khugepaged.c``): collapse 2 MiB-aligned ranges of
processes' THP-eligible VMAs, mapped with 4 KiB pages, into one THP.

Every ``scan_sleep_millisecs`` of simulated time (``tick_millisecs`` per
tick) it scans ``pages_to_scan`` worth of PMD ranges (each range counts
``HPAGE_PMD_NR``, as ``khugepaged_scan_mm_slot``), resuming where the last
pass stopped, processes in pid order (the mm_slot list).  A range is
collapsed (``hpage_collapse_scan_pmd`` then ``collapse_huge_page``) when at
most ``max_ptes_none`` of its 512 PTEs are empty, none is swapped out or
pinned, and at least one is young: an order-9 page is allocated
(``GFP_TRANSHUGE``: direct reclaim and compaction, khugepaged's default
``defrag``), the small pages are copied and freed and one PMD maps the new
page.

Differences from Linux: swapped-out PTEs make a range ineligible (Linux
swaps in up to ``max_ptes_swap``); no ``max_ptes_shared`` (no shared anon
pages here); no ``alloc_sleep_millisecs`` back-off after a failed
allocation (the pass just ends); VMA eligibility is ``enabled`` and the
madvise flag only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import ORDER_2M, ORDER_4K, PAGE_SHIFT, AllocFlag
from mmcore.errors import InvariantError, PageTableError
from mmcore.pagetables.pte import PTE_ACCESSED, PTE_PRESENT, PTE_SWAP, make_pte, pte_order, pte_pfn
from mmcore.sources import Source
from mmcore.virt.lru import LruList, lid_of

if TYPE_CHECKING:
    from mmcore.mm import MM
    from mmcore.virt.process import Process

HPAGE_PMD_NR = 1 << ORDER_2M
PMD_SIZE = 1 << (PAGE_SHIFT + ORDER_2M)
COLLAPSE_FLAGS = AllocFlag.RECLAIM | AllocFlag.COMPACT  # GFP_TRANSHUGE


class Khugepaged:
    def __init__(self, mm: MM, pages_to_scan: int = 8 * HPAGE_PMD_NR,
                 scan_sleep_millisecs: int = 10_000, max_ptes_none: int = HPAGE_PMD_NR - 1,
                 tick_millisecs: int = 10) -> None:
        self.mm = mm
        self.pages_to_scan = pages_to_scan
        self.max_ptes_none = max_ptes_none
        self.sleep_ticks = max(1, scan_sleep_millisecs // max(1, tick_millisecs))
        self.cursor = (0, 0)  # (pid, address) the next pass starts at
        self.passes = 0
        self.full_scans = 0
        self.ranges_scanned = 0
        self.collapsed = 0  # pages_collapsed
        self.alloc_failed = 0
        self.collapse_failed = 0  # no page-table page for the PMD, or the process died

    def run(self, tick: int) -> None:
        """Wake when the scan sleep has passed since the last pass."""
        if tick and tick % self.sleep_ticks == 0:
            self.scan()

    # --- scanning ---------------------------------------------------------------
    def _ranges(self, proc: Process) -> list[int]:
        mm = self.mm
        out: list[int] = []
        for v in proc.vmas:
            if v.huge == "none" or not mm.thp_allowed(v):
                continue
            base = (v.start + PMD_SIZE - 1) & -PMD_SIZE
            while base + PMD_SIZE <= v.end:
                out.append(base)
                base += PMD_SIZE
        return out

    def scan(self) -> None:
        """``khugepaged_do_scan``: one pass of ``pages_to_scan``."""
        self.passes += 1
        budget = self.pages_to_scan
        pid0, addr0 = self.cursor
        procs = sorted((p for p in self.mm.procs.values() if p.pid >= pid0),
                       key=lambda p: p.pid)
        for proc in procs:
            for base in self._ranges(proc):
                if proc.pid == pid0 and base < addr0:
                    continue
                if budget <= 0:
                    self.cursor = (proc.pid, base)
                    return
                budget -= HPAGE_PMD_NR
                self.ranges_scanned += 1
                if proc.alive and self.scan_pmd(proc, base) and not proc.alive:
                    break
        self.cursor = (0, 0)
        self.full_scans += 1

    def scan_pmd(self, proc: Process, base: int) -> bool:
        """``hpage_collapse_scan_pmd`` + ``collapse_huge_page``; True if collapsed."""
        used = proc.pmd_count.get(base >> 21, 0)
        if not used or HPAGE_PMD_NR - used > self.max_ptes_none:
            return False  # already a THP, nothing mapped, or too many empty PTEs
        if self._isolate(proc, base) is None:
            return False
        mm = self.mm
        new = mm.alloc(ORDER_2M, Source.ANON, proc.owner_id, base >> PAGE_SHIFT,
                       proc.home_node, COLLAPSE_FLAGS)
        if new < 0:
            self.alloc_failed += 1
            return False
        # the allocation may have reclaimed or killed: revalidate, as Linux does
        pages = self._isolate(proc, base) if proc.alive else None
        if pages is None:
            mm.free(new)
            return False
        prev, mm.current = mm.current, proc
        try:
            for va in pages:
                proc._drop(va, ORDER_4K)
            loc = proc.pt.map_page(base, ORDER_2M)
        except PageTableError:
            mm.free(new)
            self.collapse_failed += 1
            return False
        finally:
            mm.current = prev
        mm.mem.write(loc, make_pte(new, ORDER_2M) | PTE_ACCESSED)
        proc._account(base, ORDER_2M, +1)
        proc.present[1] += 1
        mm.lru.add(new, lid_of(mm.phys.zone_of(new).nid, LruList.INACTIVE_ANON))
        self.collapsed += 1
        if proc.oom_victim and proc.alive:
            mm.oom.pages_freed += proc.rss_pages + proc.pt.table_pages()
            mm.exit(proc)
        return True

    def _isolate(self, proc: Process, base: int) -> list[int] | None:
        """``__collapse_huge_page_isolate``: the mapped 4 KiB pages of the
        range, or None if one is swapped out or pinned, or none is young."""
        mm = self.mm
        pages: list[int] = []
        young = False
        for va in range(base, base + PMD_SIZE, 1 << PAGE_SHIFT):
            loc = proc.pt.get_pte(va)
            e = mm.mem.read(loc) if loc is not None else 0
            if not e:
                continue
            if e & PTE_SWAP or not e & PTE_PRESENT or pte_order(e) != ORDER_4K:
                return None
            if pte_pfn(e) in mm.pinned:
                return None
            young = young or bool(e & PTE_ACCESSED)
            pages.append(va)
        if len(pages) < HPAGE_PMD_NR - self.max_ptes_none or not young:
            return None
        return pages

    # --- checks and metrics -------------------------------------------------------
    def check(self) -> None:
        """Mapping consistency after collapses and splits: a 2 MiB range is
        either one PMD mapping (or swap entry) of order 9 or 4 KiB slots,
        never both."""
        mm = self.mm
        for proc in mm.procs.values():
            both = proc.huge2m.intersection(proc.pmd_count)
            if both:
                raise InvariantError(f"khugepaged: pid {proc.pid}: range "
                                     f"{min(both) << 21:#x} is both a THP and 4 KiB pages")
            for k in proc.huge2m:
                loc = proc.pt.get_pte(k << 21)
                e = mm.mem.read(loc) if loc is not None else 0
                if not e or pte_order(e) != ORDER_2M:
                    raise InvariantError(f"khugepaged: pid {proc.pid}: THP range "
                                         f"{k << 21:#x} has no 2 MiB entry")
        if self.collapsed > self.ranges_scanned:
            raise InvariantError("khugepaged: more collapses than ranges scanned")

    def metrics(self) -> dict[str, int]:
        return {
            "passes": self.passes, "full_scans": self.full_scans,
            "ranges_scanned": self.ranges_scanned, "pages_collapsed": self.collapsed,
            "alloc_failed": self.alloc_failed, "collapse_failed": self.collapse_failed,
        }
