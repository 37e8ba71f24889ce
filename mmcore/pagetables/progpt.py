"""A page table that is a program: ``map_page``/``unmap_page``/``get_pte`` run
the ``pt_map``/``pt_unmap``/``pt_lookup`` programs over a region.

The table owns one region (physically contiguous, unmovable, from the MM's
region allocator).  Its buffer is made addressable in each engine
(``engine.address_of``) and that address goes into the context's ``region``
field before every run.  A returned pointer becomes a PTE location
``(pfn, offset)`` in the region's frames only if it lies inside the region
and is 8-byte aligned; anything else, or a fault of the program, is counted
and turned into :class:`~mmcore.errors.PageTableError` (the fault handler
then fails the fault cleanly) or, for a lookup, into "not mapped".

Walk cost: a hardware walk (``get_pte(va, walk=True)``) runs the lookup on a
:class:`~mmcore.pagetables.walkrec.WalkRecorder` (the reference interpreter,
whatever engine runs the other operations) and adds to ``walk_refs`` the
distinct 64-byte lines of the region it loaded, plus the line of the PTE it
returned.  ``last_walk`` keeps that walk's references as (physical line,
dependency step) for :mod:`mmcore.pagetables.latency`.
The region's first ``meta_end`` bytes (header word 3, written by the host)
are metadata -- a learned table's models, a hashed table's header: with the
walk cache on (the MM's ``pwc`` setting) their lines are cached in an LRU
with as many entries as the radix page-walk cache has (4 + 8 + 32), and a
hit costs nothing, as a PWC hit skips a radix level.  A design whose
metadata stands for walker registers (``meta_in_registers``: ECPT's
per-size table base and size registers) never pays for it.

Rebuild cost: every rebuild appends to ``moved_lines`` the physical lines
it reads (every line of the old layout) and writes (every line of the new
one); the study resolves them through the cache hierarchy.

Growth and refits: the table keeps the set of pages it mapped (va -> size).
When ``pt_map`` returns 0 (no room) or the load passes the design's limit,
the table rebuilds: a larger region when needed, then either the design's
trainer lays every entry out (learned tables), or every entry is mapped
again through ``pt_map``; PTE values are carried over.  Rebuilds move PTEs,
which is safe because the MM core keeps no PTE location across operations.

This module does not decide layouts: the programs (and the trainer) do.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bpfvm.errors import VmFault
from mmcore.constants import MAX_ORDER, PAGE_SHIFT, PAGE_SIZE, PAGE_SIZE_ORDERS
from mmcore.errors import PageTableError, RegionError
from mmcore.hooks.dispatch import ctx_struct
from mmcore.hooks.specs import MAX_PT_REGIONS, PT_LOOKUP, PT_MAP, PT_UNMAP
from mmcore.pagetables.latency import dedupe
from mmcore.pagetables.loading import LINE, PtPrograms
from mmcore.pagetables.pte import U64, PteLoc, reserved_pte
from mmcore.pagetables.walkrec import WalkRecorder
from mmcore.phys.region import Region

if TYPE_CHECKING:
    from mmcore.mm import MM

HDR_COUNTS = 0  # three u64: pages mapped per size code
HDR_META_END = 24  # u64: end of the metadata area, bytes
CTX = ctx_struct(PT_MAP)
NO_MORE_REGIONS = (0,) * (MAX_PT_REGIONS - 1)  # a one-region table: region1 .. region7
WALK_CACHE_LINES = 4 + 8 + 32  # as many entries as the radix PWC (TlbConfig defaults)


class Trainer(Protocol):
    """Lays out a whole table in a region (see :mod:`mmcore.pagetables.trainer`)."""

    def fit(self, buf: bytearray, entries: list[tuple[int, int, int]]) -> bool:
        """Write a table holding ``entries`` (vpn, size code, PTE) into ``buf``;
        False when they do not fit in it."""
        ...

    def stale(self, mapped: int, changes: int) -> bool:
        """Whether the models should be refit after ``changes`` maps/unmaps."""
        ...

    def read(self, buf: bytearray) -> list[tuple[int, int, int]]:
        """Every (vpn, size code, PTE) the table in ``buf`` holds."""
        ...


@dataclass(frozen=True)
class PtDesign:
    """What the host needs to know about a page-table program design."""

    name: str
    capacity: Callable[[int], int]  # PTE slots in a region of n bytes
    max_load: float  # grow the region beyond this share of slots in use
    min_pages: int = 1
    meta_end: Callable[[int], int] = lambda nbytes: LINE
    trainer: Callable[[], Trainer] | None = None
    meta_in_registers: bool = False  # metadata lines are walker registers: free


@dataclass
class PtStats:
    maps: int = 0
    unmaps: int = 0
    lookups: int = 0
    walks: int = 0
    walk_lines: int = 0  # lines loaded by walks, cached or not
    cache_hits: int = 0
    rebuilds: int = 0
    grows: int = 0
    refits: int = 0
    bad_pointers: int = 0
    faults: int = 0
    last_error: str = ""
    runs: dict[str, int] = field(default_factory=dict)


def run_hook(stats: PtStats, hook: str, va: int, engine: Any, ctx: bytearray) -> int:
    """Run a page-table program on its packed context, counting the run; a
    fault is counted and becomes a :class:`PageTableError` naming ``va``."""
    stats.runs[hook] = stats.runs.get(hook, 0) + 1
    try:
        return engine.run(ctx)
    except VmFault as exc:
        stats.faults += 1
        stats.last_error = f"{hook}: {exc}"
        raise PageTableError(f"{va:#x}: {hook} faulted: {exc}") from None


class ProgramPageTable:
    """The :class:`~mmcore.pagetables.pte.PageTable` protocol implemented by programs."""

    def __init__(self, mm: MM, design: PtDesign, programs: PtPrograms, *,
                 engine: str = "interp", nid: int = 0, pages: int | None = None,
                 walk_cache: bool | None = None, pid: int = 0) -> None:
        self.mm, self.design, self.programs = mm, design, programs
        self.engine_kind, self.nid, self.pid = engine, nid, pid
        self.walk_cache_on = mm.config.pwc if walk_cache is None else walk_cache
        self.walk_cache: OrderedDict[int, None] = OrderedDict()
        self.walk_refs = 0
        self.last_walk: list[tuple[int, int]] = []  # (physical line, step) of the last walk
        self.moved_lines: list[range] = []  # physical lines rebuilds read and wrote
        self.stats = PtStats()
        self.mapped: dict[int, int] = {}  # va -> size order
        self.trainer = design.trainer() if design.trainer else None
        self._changes = 0
        self.ctx = bytearray(CTX.size)
        self.region: Region | None = None
        self._install(max(pages or design.min_pages, design.min_pages))

    # -- region and engines ------------------------------------------------
    def _install(self, npages: int) -> Region | None:
        """Switch to a fresh, formatted region of ``npages`` with engines for
        it; returns the previous region (still allocated) or None."""
        region = self.mm.regions.alloc(npages, self.nid)  # RegionError when no room
        nbytes = region.size
        try:
            engines = self.programs.engines(nbytes, self.engine_kind)
            counter = WalkRecorder(self.programs.for_region(nbytes)[PT_LOOKUP.name],
                                   self.programs.helpers)
        except Exception:
            self.mm.regions.free(region)
            raise
        previous = self.region
        self._saved = (self.region, getattr(self, "engines", None), getattr(self, "counter", None),
                       getattr(self, "addrs", None), getattr(self, "counter_addr", 0),
                       getattr(self, "meta_lines", 1))
        self.region, self.engines, self.counter = region, engines, counter
        self.addrs = {h: e.address_of(region.buf, "region") for h, e in engines.items()}
        self.counter_addr = counter.watch(region.buf)
        self.meta_lines = self.design.meta_end(nbytes) // LINE
        self._format()
        return previous

    def _back(self) -> None:
        """Undo the last :meth:`_install`: free the new region, use the old one."""
        self.mm.regions.free(self.region)  # type: ignore[arg-type]
        (self.region, self.engines, self.counter, self.addrs, self.counter_addr,
         self.meta_lines) = self._saved
        self.walk_cache.clear()

    def _format(self) -> None:
        buf = self.region.buf  # type: ignore[union-attr]
        buf[:] = bytes(len(buf))
        U64.pack_into(buf, HDR_META_END, self.meta_lines * LINE)
        self.walk_cache.clear()

    def table_pages(self) -> int:
        return self.region.npages if self.region is not None else 0

    @property
    def capacity(self) -> int:
        return self.design.capacity(self.region.size) if self.region is not None else 0

    def destroy(self) -> None:
        if self.region is not None:
            self.mm.regions.free(self.region)
            self.region = None

    # -- running the programs -------------------------------------------------
    def _run(self, hook: str, va: int, shift: int = PAGE_SHIFT, engine: Any = None,
             addr: int | None = None) -> int:
        region = self.region
        assert region is not None, "page table used after destroy()"
        CTX.pack_into(self.ctx, 0, self.addrs[hook] if addr is None else addr, region.size,
                      va, self.pid, shift, *NO_MORE_REGIONS)
        return run_hook(self.stats, hook, va, engine or self.engines[hook], self.ctx)

    def _loc(self, hook: str, r0: int, base: int) -> PteLoc | None:
        """The PTE location ``r0`` points at, or None when it is not a valid one."""
        off = r0 - base
        region = self.region
        assert region is not None
        if not (0 <= off <= region.size - 8 and off % 8 == 0) or off < self.meta_lines * LINE:
            self.stats.bad_pointers += 1
            self.stats.last_error = f"{hook}: returned {r0:#x}, not a PTE slot of the region"
            return None
        return region.start + off // PAGE_SIZE, off % PAGE_SIZE

    # -- the PageTable protocol ---------------------------------------------------
    def map_page(self, va: int, size_order: int = 0) -> PteLoc:
        self.stats.maps += 1
        if va not in self.mapped and self._load_after(1) > self.design.max_load:
            self._rebuild(grow=True)
        elif self.trainer is not None and self.trainer.stale(len(self.mapped), self._changes):
            self._rebuild(grow=False)
        for attempt in range(3):
            r0 = self._run(PT_MAP.name, va, PAGE_SHIFT + size_order)
            if r0:
                loc = self._loc(PT_MAP.name, r0, self.addrs[PT_MAP.name])
                if loc is None:
                    raise PageTableError(f"{va:#x}: pt_map returned an invalid pointer")
                if self.mapped.get(va) != size_order:
                    self.mapped[va] = size_order
                    self._changes += 1
                return loc
            self._rebuild(grow=attempt > 0, pending=(va >> PAGE_SHIFT, size_order))
        raise PageTableError(f"{va:#x}: no room in the page table after rebuilding")

    def unmap_page(self, va: int) -> None:
        self.stats.unmaps += 1
        r0 = self._run(PT_UNMAP.name, va)
        if r0 != 0:
            raise PageTableError(f"{va:#x}: not mapped")
        for order in PAGE_SIZE_ORDERS:  # the page that covered va
            base = va & -(PAGE_SIZE << order)
            if self.mapped.get(base) == order:
                del self.mapped[base]
                break
        self._changes += 1

    def get_pte(self, va: int, walk: bool = False) -> PteLoc | None:
        self.stats.lookups += 1
        if not walk:
            r0 = self._run(PT_LOOKUP.name, va)
            return self._loc(PT_LOOKUP.name, r0, self.addrs[PT_LOOKUP.name]) if r0 else None
        self.stats.walks += 1
        counter = self.counter
        r0 = self._run(PT_LOOKUP.name, va, engine=counter, addr=self.counter_addr)
        loc = self._loc(PT_LOOKUP.name, r0, self.counter_addr) if r0 else None
        refs = dedupe(counter.refs)
        if loc is not None:
            line = ((loc[0] - self.region.start) * PAGE_SIZE + loc[1]) >> 6  # type: ignore[union-attr]
            if all(line != seen for seen, _ in refs):
                refs.append((line, counter.ret_step + 1))
        self.walk_refs += self._cost(self.walk_filter(va, refs))
        return loc

    def walk_filter(self, va: int, refs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The references a hardware walker makes of those the program made
        (all of them here; a design with walk caches that prune probes
        overrides this)."""
        return refs

    def _cost(self, refs: list[tuple[int, int]]) -> int:
        """Memory references of a walk; sets :attr:`last_walk`."""
        self.stats.walk_lines += len(refs)
        base = self.region.start * (PAGE_SIZE // LINE)  # type: ignore[union-attr]
        meta = self.meta_lines
        cache, out = self.walk_cache, []
        for line, step in refs:
            if line < meta:
                if self.design.meta_in_registers:
                    continue
                if self.walk_cache_on:
                    if line in cache:
                        cache.move_to_end(line)
                        self.stats.cache_hits += 1
                        continue
                    cache[line] = None
                    if len(cache) > WALK_CACHE_LINES:
                        cache.popitem(last=False)
            out.append((base + line, step))
        self.last_walk = out
        return len(out)

    # -- growth and refits ----------------------------------------------------------
    def refit(self) -> None:
        """Lay the table out again now (the trainer's periodic pass; for a
        table without trainer, a rehash that drops deleted slots)."""
        self._rebuild(grow=False)

    def _load_after(self, extra: int) -> float:
        return (len(self.mapped) + extra) / max(self.capacity, 1)

    def entries(self) -> list[tuple[int, int, int]]:
        """(vpn, size code, PTE value) of every mapped page."""
        read = getattr(self.trainer, "read", None)
        if read is not None:
            return read(self.region.buf)  # type: ignore[union-attr]
        out = []
        for va, order in self.mapped.items():
            loc = self.get_pte(va)
            if loc is None:
                raise PageTableError(f"{va:#x}: mapped but pt_lookup does not find it")
            out.append((va >> PAGE_SHIFT, PAGE_SIZE_ORDERS.index(order), self.mm.mem.read(loc)))
        return out

    def _fits(self, n: int, npages: int) -> bool:
        return n + 1 <= self.design.capacity(npages * PAGE_SIZE) * self.design.max_load

    def _rebuild(self, grow: bool, pending: tuple[int, int] | None = None) -> None:
        """Lay the table out again, in a larger region when ``grow`` or when
        it does not fit; the old layout stays intact until the new one is
        whole.  ``pending`` (vpn, order) is a page being mapped: it gets its
        slot now, holding a reserved PTE."""
        entries = self.entries()
        if pending is not None:
            code = PAGE_SIZE_ORDERS.index(pending[1])
            entries.append((pending[0], code, reserved_pte(pending[1])))
        region = self.region
        assert region is not None
        self.stats.rebuilds += 1
        self._charge(region)
        if not grow and self._fits(len(entries), region.npages):
            backup = bytes(region.buf)
            self._format()
            if self._fill(entries):
                self.stats.refits += 1
                self._changes = 0
                self._charge(region)
                return
            region.buf[:] = backup
        want = region.npages * 2
        while not self._fits(len(entries), want):
            want *= 2
        while want <= 1 << MAX_ORDER:
            try:
                old = self._install(want)
            except RegionError as exc:
                raise PageTableError(f"the page table cannot grow: {exc}") from None
            if self._fill(entries):
                self.stats.grows += 1
                self._charge(self.region)
                if old is not None:
                    self.mm.regions.free(old)
                self._changes = 0
                return
            self._back()
            want *= 2
        raise PageTableError(f"{len(entries)} pages do not fit in the largest region")

    def _charge(self, region: Region | None) -> None:
        """Count every line of ``region`` as moved (read or written once)."""
        if region is not None:
            first = region.start * (PAGE_SIZE // LINE)
            self.moved_lines.append(range(first, first + region.size // LINE))

    def _fill(self, entries: list[tuple[int, int, int]]) -> bool:
        buf = self.region.buf  # type: ignore[union-attr]
        if self.trainer is not None:
            return self.trainer.fit(buf, entries)
        for vpn, code, pte in entries:
            r0 = self._run(PT_MAP.name, vpn << PAGE_SHIFT, PAGE_SHIFT + PAGE_SIZE_ORDERS[code])
            loc = self._loc(PT_MAP.name, r0, self.addrs[PT_MAP.name]) if r0 else None
            if loc is None:
                self._format()
                return False
            self.mm.mem.write(loc, pte)
        return True


def program_table(design: PtDesign, programs: PtPrograms, **kw: Any) -> Callable[[MM], Any]:
    """A page-table factory for ``MM.spawn(page_table=...)``."""
    return lambda mm: ProgramPageTable(mm, design, programs, **kw)


HASHED = PtDesign(
    name="hashed",
    capacity=lambda nbytes: (nbytes // LINE - 1) * 4,  # 4 slots per bucket line
    max_load=0.75,
)
