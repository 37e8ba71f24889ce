"""The MM core: one object wiring physical memory, the page allocator, LRU,
reclaim, compaction, page tables, processes, the page cache, kernel
allocations, regions and the hook points together.

This is the API the scenario runner, the CLI and the program layer use:
``MM(spec, config)``, ``spawn``, ``new_file``, ``alloc``/``free``,
``kernel.alloc``, ``regions.alloc``, ``resize_zone``, ``compact``,
``background`` (kswapd + kcompactd), ``hooks.attach``, ``check`` and
``metrics``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MethodType
from typing import Any, Protocol

from mmcore.constants import NR_ORDERS, ORDER_2M, PAGEBLOCK_ORDER, ZoneKind
from mmcore.errors import OutOfMemoryError, PageTableError
from mmcore.hooks.dispatch import HookTable, slot
from mmcore.hooks.inplace import LifetimeContext, ReclaimContext, ZoneResizeContext
from mmcore.hooks.placement import placement_call
from mmcore.hooks.placement_native import native_placement_call
from mmcore.hooks.specs import HUGEPAGE, LIFETIME, MAX_CTX_NODES, PLACEMENT, RECLAIM, ZONE_RESIZE
from mmcore.invariants import check_all
from mmcore.metrics import collect
from mmcore.pagetables.pte import PageTable, TableMemory
from mmcore.pagetables.radix import RadixPageTable
from mmcore.pagetables.tlb import PageWalkCache, Tlb, TlbConfig
from mmcore.phys.compaction import Compactor
from mmcore.phys.compaction.control import EXTFRAG_THRESHOLD, Result
from mmcore.phys.hugetlb import HugetlbPool
from mmcore.phys.kernel import KernelAllocs
from mmcore.phys.page_alloc import PageAllocator
from mmcore.phys.physmem import MachineSpec, PhysMem, Zone
from mmcore.phys.region import RegionAllocator
from mmcore.phys.slab import SlabAllocator
from mmcore.phys.zone_resize import MIN_NORMAL_PAGEBLOCKS, resize_normal_zone
from mmcore.sources import FIRST_DYNAMIC_OWNER, KERNEL_OWNER, SOURCES, Source
from mmcore.virt.khugepaged import Khugepaged
from mmcore.virt.lru import LruLists
from mmcore.virt.oom_kill import OomKiller
from mmcore.virt.pagecache import File
from mmcore.virt.process import Process, Vma
from mmcore.virt.reclaim import Reclaimer
from mmcore.virt.workingset import Workingset


class RmapOwner(Protocol):
    """What migration and reclaim need of a page's owner."""

    def remap(self, old: int, new: int, index: int, order: int) -> None: ...

    def evict(self, pfn: int, index: int, order: int) -> None: ...

    def referenced(self, pfn: int, index: int) -> bool: ...


@dataclass(frozen=True)
class MMConfig:
    tlb: TlbConfig = field(default_factory=TlbConfig)
    compaction_proactiveness: int = 20
    swappiness: int = 60
    pwc: bool = True
    extfrag_threshold: int = EXTFRAG_THRESHOLD  # vm.extfrag_threshold
    kcompactd_interval: int = 50  # ticks between kcompactd's proactive checks
    pin_rate: float = 0.0  # share of anonymous pages long-term pinned at fault
    pin_seed: int = 1  # seed of the pin draws (their own generator)
    hugetlb_boot: int = 0  # 1 GiB pages reserved at boot (hugepagesz=1G hugepages=N)
    hugetlb_overcommit: int = 0  # nr_overcommit_hugepages (surplus pages on demand)
    hugetlb_movable: bool = False  # pool pages may come from ZONE_MOVABLE (not Linux)
    thp_enabled: str = "always"  # transparent_hugepage/enabled
    thp_defrag: str = "madvise"  # transparent_hugepage/defrag
    tick_millisecs: int = 10  # simulated time per tick (khugepaged's scan sleep)
    khugepaged_pages_to_scan: int = 4096
    khugepaged_scan_sleep_millisecs: int = 10_000
    khugepaged_max_ptes_none: int = 511
    scan_balance: str = "cost"  # the built-in anon/file split: "cost" (get_scan_count) or "fixed"


@dataclass
class MMStats:
    faults: int = 0
    major_faults: int = 0
    segv: int = 0
    oom: int = 0
    pt_failures: int = 0
    huge_attempts: list[int] = field(default_factory=lambda: [0, 0, 0])  # by size index
    huge_success: list[int] = field(default_factory=lambda: [0, 0, 0])
    swapouts: int = 0
    swapins: int = 0
    swap_used: int = 0
    file_evictions: int = 0
    pagecache_hits: int = 0
    pagecache_misses: int = 0
    pgscan: int = 0
    pgsteal: int = 0
    walks: int = 0
    walk_refs: int = 0
    munmaps: int = 0
    tlb_hits: int = 0  # of exited processes
    tlb_misses: int = 0
    zone_resizes: int = 0
    pageblocks_moved: int = 0
    spawn_failures: int = 0  # no memory for a new process's page table
    thp_splits: int = 0  # THPs split by a partial munmap
    thp_split_failures: int = 0  # ... unmapped whole for want of a page-table page


PageTableFactory = Callable[["MM"], PageTable]

# where the hook-backed decisions write their context fields (index into the
# context view of the field's width, see mmcore.hooks.dispatch.HookPoint.views)
# (the placement fields written per call: mmcore.hooks.placement)
_PL_SOURCE, _PL_NODES, _PL_FREE = (slot(PLACEMENT, n) for n in ("source", "nr_nodes",
                                                                 "free_node0"))
_HP = {f.name: slot(HUGEPAGE, f.name) for f in HUGEPAGE.fields}
_HP_FIELDS = ("pid", "allowed", "va", "vma_start", "vma_end", "huge_2m", "huge_1g", "rss",
              "free_2m", "free_1g")
_HP_PID, _HP_ALLOWED, _HP_VA, _HP_START, _HP_END, _HP_2M, _HP_1G, _HP_RSS, _HP_FREE2M, \
    _HP_FREE1G = (_HP[n] for n in _HP_FIELDS)
_HP_MAX = HUGEPAGE.ret_max
assert PLACEMENT.ret_min == HUGEPAGE.ret_min == 0 and PLACEMENT.ret_max == MAX_CTX_NODES - 1
_ANON = int(Source.ANON)
_U32 = (1 << 32) - 1


class MM:
    def __init__(self, spec: MachineSpec, config: MMConfig | None = None) -> None:
        self.config = config or MMConfig()
        self.phys = PhysMem(spec)
        self.frames = self.phys.frames
        self.pa = PageAllocator(self.phys)
        self.mem = TableMemory()
        self.lru = LruLists(self.frames, len(self.phys.nodes))
        self.stats = MMStats()
        self.tick = 0
        self.owners: dict[int, RmapOwner | None] = {oid: None for oid in KERNEL_OWNER.values()}
        self.procs: dict[int, Process] = {}
        self.files: dict[int, File] = {}
        self._next_owner = FIRST_DYNAMIC_OWNER
        self.kernel = KernelAllocs(self)
        self.pinned: set[int] = set()  # pfns of long-term pinned pages (not migratable)
        self._pin_rng = random.Random(self.config.pin_seed)
        cfg = self.config
        self.slab = SlabAllocator(self)
        self.workingset = Workingset(self.lru, len(self.phys.nodes), cfg.scan_balance == "cost")
        self.reclaim = Reclaimer(self, cfg.swappiness, cfg.scan_balance)
        self.compaction = Compactor(self, cfg.compaction_proactiveness, cfg.extfrag_threshold,
                                    cfg.kcompactd_interval)
        self.regions = RegionAllocator(self)
        self.khugepaged = Khugepaged(self, cfg.khugepaged_pages_to_scan,
                                     cfg.khugepaged_scan_sleep_millisecs,
                                     cfg.khugepaged_max_ptes_none, cfg.tick_millisecs)
        self.hugetlb = HugetlbPool(self, cfg.hugetlb_boot, cfg.hugetlb_overcommit,
                                   cfg.hugetlb_movable)
        self.oom = OomKiller(self)
        self.current: Process | None = None  # the process whose fault is running
        self.hooks = HookTable(
            (
                (PLACEMENT, self._default_placement),
                (HUGEPAGE, self._default_hugepage),
                (RECLAIM, self.reclaim.default_split),
                (ZONE_RESIZE, lambda *a: 0),
                (LIFETIME, lambda *a: 0),
            )
        )
        self._placement = self.hooks.points["placement"]
        _, _, self._pl32, self._pl64 = self._placement.views()
        self._hugepage = self.hooks.points["hugepage"]
        _, _, self._hp32, self._hp64 = self._hugepage.views()
        # which fields the attached program loads: set while the hook point is stale
        self._hp_wants: tuple[bool, ...] = ()
        self.reclaim.hook = ReclaimContext(self.hooks)
        self.kernel.lifetime = LifetimeContext(self.hooks)
        self._zone_resize = ZoneResizeContext(self.hooks)
        self._node_zones = [tuple(node.zones) for node in self.phys.nodes]
        self._pl_nodes = len(self._node_zones)
        self.pa.reclaim_cb = self.reclaim.direct
        self.pa.compact_cb = self.compaction.direct
        self.pa.kswapd_cb = self.reclaim.wake
        self.pa.oom_cb = self.oom.out_of_memory
        self.pa.confine = self._resizable_region

    def _resizable_region(self, z: Zone) -> bool:
        """A node's unmovable region (its normal zone) while a ``zone_resize``
        program moves its boundary: unmovable pages go to its far end."""
        return z.kind == ZoneKind.NORMAL and self.hooks.attached("zone_resize")

    # --- raw allocation ------------------------------------------------------
    def alloc(
        self,
        order: int,
        source: Source,
        owner: int,
        index: int = 0,
        nid: int = 0,
        flags: int | None = None,
    ) -> int:
        info = SOURCES[source]
        return self.pa.alloc(
            order, info.mt, owner, index, nid, info.flags if flags is None else flags
        )

    def free(self, pfn: int) -> None:
        if self.frames.lru[pfn]:
            self.lru.remove(pfn)
        if self.pinned:
            self.pinned.discard(pfn)
        if self.hugetlb.pages and pfn in self.hugetlb.pages:
            self.hugetlb.free_page(pfn)
            return
        self.pa.free(pfn)

    def thp_allowed(self, vma: Vma) -> bool:
        """``transparent_hugepage/enabled`` for a VMA."""
        enabled = self.config.thp_enabled
        return enabled == "always" or (enabled == "madvise" and vma.madvised)

    def maybe_pin(self, pfn: int) -> None:
        """Pin a freshly faulted anonymous page with chance ``pin_rate`` (a
        long-term GUP pin, as RDMA or VFIO take): it stays movable but
        migration refuses it until it is freed."""
        if self.config.pin_rate and self._pin_rng.random() < self.config.pin_rate:
            self.pinned.add(pfn)

    # --- owners ----------------------------------------------------------------
    def _new_owner(self) -> int:
        oid = self._next_owner
        self._next_owner += 1
        return oid

    def new_radix(self, mm: MM) -> PageTable:
        """The built-in page table for a new process."""
        owner = KERNEL_OWNER[Source.PAGETABLE]
        pwc = PageWalkCache(self.config.tlb) if self.config.pwc else None
        return RadixPageTable(
            self.mem, lambda: self.alloc(0, Source.PAGETABLE, owner), self.pa.free, pwc
        )

    def spawn(self, home_node: int = 0, page_table: PageTableFactory | None = None) -> Process:
        """A new process; :class:`OutOfMemoryError` (as fork's -ENOMEM) when
        its page table cannot get memory even after reclaim and the OOM
        killer."""
        pid = self._new_owner()
        try:
            pt = (page_table or self.new_radix)(self)
        except PageTableError as exc:
            self.stats.spawn_failures += 1
            raise OutOfMemoryError(f"cannot create a process: {exc}") from None
        proc = Process(self, pid, home_node, pt, Tlb(self.config.tlb))
        self.procs[pid] = proc
        self.owners[pid] = proc
        return proc

    def exit(self, proc: Process) -> None:
        proc.exit()
        self.stats.tlb_hits += proc.tlb.hits
        self.stats.tlb_misses += proc.tlb.misses
        destroy = getattr(proc.pt, "destroy", None)
        if destroy is not None:
            destroy()
        del self.procs[proc.pid]
        del self.owners[proc.pid]

    def new_file(self, npages: int, home_node: int = 0) -> File:
        fid = self._new_owner()
        f = File(self, fid, npages, home_node)
        self.files[fid] = f
        self.owners[fid] = f
        return f

    def delete_file(self, f: File) -> None:
        f.drop()
        del self.files[f.fid]
        del self.owners[f.fid]

    # --- hook-backed decisions -------------------------------------------------
    # Each writes the context of its hook record (mmcore.hooks.specs) field by
    # field into the hook's buffer, and only when a program is attached: only
    # the fields the program loads (HookPoint.needs), looked up again after
    # an attach (HookPoint.stale); the placement call is written for the
    # program (mmcore.hooks.placement).
    def _default_placement(self, order: int, source: int, pid: int, home: int, *rest: int) -> int:
        return home

    def hook_placement(self, proc: Process, vma: Vma, order: int) -> int:
        """The node of a new user page: the process's home node, or what the
        attached program proposes.  With a program attached, this makes the
        placement call for it (compiled, :func:`native_placement_call`, for
        a program on the JIT; else :func:`placement_call`) and installs it as
        this instance's ``hook_placement``, which hands back here once the
        hook point goes stale (an attach or detach makes a new one)."""
        hp = self._placement
        if hp.engine is None:
            self.__dict__.pop("hook_placement", None)
            return proc.home_node
        self._placement_fixed()
        generic = MethodType(MM.hook_placement, self)
        call = native_placement_call(hp, self._node_zones, generic, self._placement_settle)
        if call is None:
            call = placement_call(hp, self._pl32, self._pl64, self._node_zones, generic,
                                  self._placement_settle)
        self.hook_placement = call  # type: ignore[method-assign]
        return call(proc, vma, order)

    def _placement_fixed(self) -> None:
        """Write the placement fields that never change (and absent nodes'
        free pages)."""
        w32, w64 = self._pl32, self._pl64
        n = self._pl_nodes
        w32[_PL_SOURCE] = _ANON
        w32[_PL_NODES] = n
        for i in range(_PL_FREE + n, _PL_FREE + MAX_CTX_NODES):
            w64[i] = 0
        self._placement.stale = False

    def _placement_settle(self, r0: int, home: int) -> int:
        """The node for an r0 that is not one as it is: a fault or a value
        out of range (a fallback, counted), or in the hook's range but not a
        node (refused)."""
        hp = self._placement
        r = hp.settle(r0)
        if r is not None:
            if r < self._pl_nodes:
                return r
            hp.refuse()
        return home

    @staticmethod
    def _default_hugepage(allowed: int) -> int:
        return allowed.bit_length() - 1

    def hook_hugepage(self, proc: Process, vma: Vma, va: int, allowed: int) -> int:
        if allowed == 1:
            return 0
        hp = self._hugepage
        words = hp.words  # HookPoint.calls, HookPoint.stale, ...
        words[0] += 1
        if hp.engine is None:
            return allowed.bit_length() - 1
        if words[1]:
            need = hp.needs
            self._hp_wants = tuple(need(f) for f in _HP_FIELDS)
            words[1] = 0
        w32, w64 = self._hp32, self._hp64
        pid, allow, at, start, end, h2m, h1g, rss, f2m, f1g = self._hp_wants
        if pid:
            w32[_HP_PID] = proc.pid
        if allow:
            w32[_HP_ALLOWED] = allowed
        if at:
            w64[_HP_VA] = va
        if start:
            w64[_HP_START] = vma.start
        if end:
            w64[_HP_END] = vma.end
        if h2m:
            w64[_HP_2M] = proc.present[1]
        if h1g:
            w64[_HP_1G] = proc.present[2]
        if rss:
            w64[_HP_RSS] = proc.rss_pages
        if f2m:
            w64[_HP_FREE2M] = sum(z.nr_free[o] << (o - ORDER_2M)
                                  for z in self._node_zones[proc.home_node]
                                  for o in range(ORDER_2M, NR_ORDERS))
        if f1g:
            w64[_HP_FREE1G] = self.hugetlb.free_count(proc.home_node)
        try:
            r0 = hp.fast()  # type: ignore[misc]
        except Exception as exc:  # an engine fault must never reach MM state
            hp.failed(exc)
            return hp.default(allowed)
        if r0 <= _HP_MAX and allowed >> r0 & 1:  # the hook's range, then the VMA's sizes
            return r0
        r = hp.settle(r0)  # a fault, or out of range (counted)
        if r is not None:
            if allowed >> r & 1:
                return r
            hp.refuse()
        return hp.default(allowed)

    def after_reclaim(self, nid: int) -> int:
        """The zone-resize decision taken after each reclaim pass."""
        if not self.hooks.attached("zone_resize"):
            self.reclaim.window = [0, 0]
            return 0
        node = self.phys.nodes[nid]
        normal, movable = node.normal, node.movable
        w = self.reclaim.window
        total = (node.end - node.start) >> PAGEBLOCK_ORDER
        values = (
            w[0], w[1], normal.managed >> PAGEBLOCK_ORDER, movable.managed >> PAGEBLOCK_ORDER,
            normal.free_pages, movable.free_pages, MIN_NORMAL_PAGEBLOCKS, total - 1,
        )  # fmt: skip
        delta = self._zone_resize.decide(*values)
        self.reclaim.window = [0, 0]
        return self.resize_zone(nid, delta) if delta else 0

    # --- mechanisms ---------------------------------------------------------------
    def resize_zone(self, nid: int, delta_pageblocks: int) -> int:
        return resize_normal_zone(self, nid, delta_pageblocks)

    def compact(self, nid: int, order: int = -1, evacuate_normal: bool = False) -> bool:
        """Compact a node's zones; with ``evacuate_normal``, move the movable
        pages of its normal zone into its movable zone (Contiguitas)."""
        node = self.phys.nodes[nid]
        c = self.compaction
        if evacuate_normal:
            return c.compact_zone(node.normal, order, target=node.movable) == Result.SUCCESS
        return any([c.compact_zone(z, order) == Result.SUCCESS for z in node.zones if z.managed])

    def background(self) -> None:
        """What runs between events: expiry of kernel allocations, kswapd,
        kcompactd, khugepaged."""
        self.kernel.expire(self.tick)
        self.slab.expire(self.tick)
        self.reclaim.run_kswapd()
        self.compaction.kcompactd.run(self.tick)
        self.khugepaged.run(self.tick)

    def kswapd_sleep(self, nid: int, order: int, classzone: int) -> None:
        """kswapd of ``nid`` balanced its node and goes to sleep
        (``kswapd_try_to_sleep``): reset skip bits that direct compaction
        asked to flush, and wake kcompactd for the order it was woken for."""
        self.compaction.kswapd_sleep(nid)
        self.compaction.kcompactd.wake(nid, order, classzone)

    # --- checks and metrics ---------------------------------------------------------
    def check(self) -> None:
        """Every invariant (:func:`mmcore.invariants.check_all`)."""
        check_all(self)
        self.compaction.check()
        self.hugetlb.check()
        self.khugepaged.check()

    def metrics(self) -> dict[str, Any]:
        return collect(self)

    def page_table_pages(self) -> int:
        return sum(p.pt.table_pages() for p in self.procs.values())
