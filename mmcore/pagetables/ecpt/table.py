"""The host side of the elastic cuckoo page table (``programs/cuckoo_pt.s``,
clustered entries; ``programs/cuckoo_unclustered_pt.s``, one tag per page:
the layouts of :mod:`mmcore.pagetables.ecpt.entries`).

The programs look keys up, insert into an empty entry of a key's three
candidate buckets and remove; this module does what ECPT leaves to the OS:

* **displacement**: when ``pt_map`` finds the three buckets full, a random
  walk of cuckoo kicks (at most :data:`MAX_KICKS`) moves resident entries
  (a clustered entry with all its pages) to their other ways;
* **elastic resizing**: when a size's table passes :data:`MAX_LOAD` (of
  its entries), or displacement fails, a new table with twice the buckets per way is made
  and the old one is moved into it :data:`MIGRATE_PER_INSERT` bucket rows
  (one bucket of every way) per insertion, behind the rehash pointer P
  that the programs read: lookups probe the old table's bucket only while
  it lies at or above P.  Downsizing is the same move into a table of half
  the buckets, started when an unmap leaves a size's table below
  :data:`MIN_LOAD` (never below its initial size), and carried on
  :data:`MIGRATE_PER_INSERT` rows per map or unmap;
* the **cuckoo walk tables** (:mod:`mmcore.pagetables.ecpt.cwc`), kept exact on
  every move, whose caches prune the ways a walk probes.

Every way has its own region (``region``, ``region1``, ``region2`` of the
context, of one size): way w of every table lives in region w, at the same
offset in each; the first region's first lines hold the header and the
table registers (the other regions leave those lines unused).  Tables are
placed by a bump pointer; when a new table does not fit, every way's
region is replaced by one twice the live size and the live tables are
copied into it, packed (ECPT allocates each table's ways anew and needs no
such copy; the copy is counted as moved lines).
The header's page and entry counts are the programs'; an entry the host
places by displacement for ``map_page`` is counted there by the host.
A clustered table's tags live in its PTEs' unused bits, which the MM's
PTE accessors leave alone (:meth:`~mmcore.pagetables.pte.TableMemory.keep`).
The hash (``hv`` per way, bucket = ``hv * NB >> 32``) mirrors the program's
exactly.  Every line moved by displacement, migration or a region copy is
appended to ``moved_lines``.
"""

from __future__ import annotations

import random
import struct
from typing import TYPE_CHECKING, Any

from mmcore.constants import PAGE_SHIFT, PAGE_SIZE, PAGE_SIZE_ORDERS
from mmcore.errors import PageTableError
from mmcore.hooks.specs import MAX_PT_REGIONS, PT_LOOKUP
from mmcore.pagetables.ecpt.cwc import CuckooWalkCache, CwcConfig
from mmcore.pagetables.ecpt.entries import CLUSTERED, UNCLUSTERED, EntryLayout
from mmcore.pagetables.loading import LINE, PtPrograms
from mmcore.pagetables.progpt import CTX, ProgramPageTable, PtDesign, run_hook
from mmcore.pagetables.pte import U64, PteLoc, reserved_pte
from mmcore.pagetables.walkrec import WalkRecorder
from mmcore.phys.region import Region

if TYPE_CHECKING:
    from mmcore.mm import MM

WAYS = 3
KEYS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)
META_END = 4 * LINE
REGS = struct.Struct("<QQQQQ")  # NB, base, old NB, old base, P
INITIAL_NB = (8, 1, 1)  # buckets per way, per size code, of a fresh table
MAX_LOAD = 0.6  # grow a size's table beyond this share of its entries
MIN_LOAD = 0.15  # shrink it (to half the buckets) below this share
MAX_KICKS = 64
MIGRATE_PER_INSERT = 2
M64 = (1 << 64) - 1


def hv(tag: int, way: int) -> int:
    return ((tag * KEYS[way]) & M64) >> 32


def bucket(tag: int, way: int, nb: int) -> int:
    return (hv(tag, way) * nb) >> 32


def _design(layout: EntryLayout) -> PtDesign:
    return PtDesign(
        name=layout.name,
        capacity=lambda nbytes: WAYS * ((nbytes - META_END) // LINE * layout.per_bucket),
        max_load=MAX_LOAD,
        meta_end=lambda nbytes: META_END,
        meta_in_registers=True,
    )


ECPT = _design(CLUSTERED)
ECPT_UNCLUSTERED = _design(UNCLUSTERED)
LAYOUTS = {ECPT.name: CLUSTERED, ECPT_UNCLUSTERED.name: UNCLUSTERED}


class CuckooPageTable(ProgramPageTable):
    """An elastic cuckoo page table: the programs plus the OS's side of ECPT."""

    def __init__(self, mm: MM, programs: PtPrograms, *, cwc: CwcConfig | None = None,
                 seed: int = 0, layout: EntryLayout = CLUSTERED, **kw: Any) -> None:
        self.layout = layout
        self.regs = [[nb, 0, 0, 0, 0] for nb in INITIAL_NB]  # per size code
        self.cwc = CuckooWalkCache(cwc)
        self.rng = random.Random(seed)
        self.kicks = self.migrated = self.resizes = self.copies = self.shrinks = 0
        self.ways: list[Region] = []
        super().__init__(mm, ECPT if layout is CLUSTERED else ECPT_UNCLUSTERED, programs, **kw)

    # -- regions, one per way --------------------------------------------------------
    def _install(self, npages: int) -> list[Region] | None:  # type: ignore[override]
        """Switch to fresh regions of ``npages`` each, formatted, with engines
        for them; returns the previous regions (still allocated) or None."""
        ways: list[Region] = []
        try:
            for _ in range(WAYS):
                ways.append(self.mm.regions.alloc(npages, self.nid))
            nbytes = ways[0].size
            engines = self.programs.engines(nbytes, self.engine_kind)
            counter = WalkRecorder(self.programs.for_region(nbytes)[PT_LOOKUP.name],
                                      self.programs.helpers)
        except Exception:
            for r in ways:
                self.mm.regions.free(r)
            raise
        if self.layout.kept_bits:
            for r in ways:
                for pfn in range(r.start, r.start + r.npages):
                    self.mm.mem.keep(pfn, self.layout.kept_bits)
        previous = self.ways or None
        self.ways, self.region, self.engines, self.counter = ways, ways[0], engines, counter
        bufs = [r.buf for r in ways]
        self.addrs = {h: _padded([e.address_of(b, "region") for b in bufs])
                      for h, e in engines.items()}
        self.walk_addrs = _padded(counter.watch_all(bufs))
        self.meta_lines = META_END // LINE
        self._format()
        return previous

    def table_pages(self) -> int:
        return sum(r.npages for r in self.ways)

    def destroy(self) -> None:
        for r in self.ways:
            self.mm.regions.free(r)
        self.ways, self.region = [], None

    def _run(self, hook: str, va: int, shift: int = PAGE_SHIFT, engine: Any = None,
             addr: Any = None) -> int:
        assert self.ways, "page table used after destroy()"
        a = self.walk_addrs if engine is self.counter else self.addrs[hook]
        CTX.pack_into(self.ctx, 0, a[0], self.ways[0].size, va, self.pid, shift, *a[1:])
        return run_hook(self.stats, hook, va, engine or self.engines[hook], self.ctx)

    def _at(self, r0: int, addrs: list[int]) -> tuple[int, int] | None:
        """(way, offset) of the slot pointer ``r0`` returned, or None."""
        size = self.ways[0].size
        for w in range(WAYS):
            off = r0 - addrs[w]
            if META_END <= off <= size - 8 and off % 8 == 0:
                return w, off
        return None

    def _loc(self, hook: str, r0: int, base: Any) -> PteLoc | None:  # type: ignore[override]
        at = self._at(r0, base if isinstance(base, list) else self.addrs[hook])
        if at is None:
            self.stats.bad_pointers += 1
            self.stats.last_error = f"{hook}: returned {r0:#x}, not a PTE slot of the ways"
            return None
        w, off = at
        return self.ways[w].start + off // PAGE_SIZE, off % PAGE_SIZE

    # -- layout ---------------------------------------------------------------------
    def _need(self) -> int:
        """Bytes of each way's region in use (the header lines included)."""
        return META_END + sum((r[0] + r[2]) * LINE for r in self.regs)

    def _format(self) -> None:
        """Fresh regions: header, then every live table, packed."""
        for r in self.ways:
            r.buf[:] = bytes(len(r.buf))
        U64.pack_into(self.ways[0].buf, 24, META_END)
        top = META_END
        for r in self.regs:
            r[1], top = top, top + r[0] * LINE
            if r[2]:
                r[3], top = top, top + r[2] * LINE
        self.top = top
        self._write_regs()
        self.walk_cache.clear()

    def _write_regs(self) -> None:
        for code, r in enumerate(self.regs):
            REGS.pack_into(self.ways[0].buf, LINE * (1 + code), *r)

    def live_bytes(self) -> int:
        """Bytes of the tables in use over every way (header lines included), holes left out."""
        return WAYS * self._need()

    def _areas(self, code: int) -> list[tuple[int, int, bool]]:
        """(base, NB, old) of the size's tables."""
        r = self.regs[code]
        return [(r[1], r[0], False)] + ([(r[3], r[2], True)] if r[2] else [])

    def _where(self, way: int, off: int) -> tuple[int, int, bool] | None:
        """(size code, way, old) of the table line holding offset ``off`` of way ``way``."""
        for code in range(3):
            for base, nb, old in self._areas(code):
                if base <= off < base + nb * LINE:
                    return code, way, old
        return None

    # -- the PageTable protocol ----------------------------------------------------
    def map_page(self, va: int, size_order: int = 0) -> PteLoc:
        self.stats.maps += 1
        code = PAGE_SIZE_ORDERS.index(size_order)
        if not self.layout.fits(va, code):
            raise PageTableError(f"{va:#x}: beyond the addresses a tag can name")
        self._migrate(code, MIGRATE_PER_INSERT)
        known = self.mapped.get(va) == size_order
        r0 = self._run("pt_map", va, PAGE_SHIFT + size_order)
        hook = "pt_map"
        if r0 == 0:  # three buckets taken: a new entry goes in by displacement
            key = self.layout.key(va, code)
            if not self._displace(self.layout.entry(key, reserved_pte(size_order), va), code):
                self._grow(code, force=True)
            self._bump(code, 0, +1)
            if self.layout.load_word:
                self._bump(code, self.layout.load_word, +1)
            r0, hook = self._run("pt_lookup", va), "pt_lookup"
            if r0 == 0:
                raise PageTableError(f"{va:#x}: not in the cuckoo table after displacement")
        elif not known:
            at = self._at(r0, self.addrs[hook])
            if at is not None:
                self._note_at(va, code, *at, +1)
        loc = self._loc(hook, r0, self.addrs[hook])
        if loc is None:
            raise PageTableError(f"{va:#x}: {hook} returned an invalid pointer")
        if not known:
            self.mapped[va] = size_order
            self._changes += 1
            if self._load(code) > MAX_LOAD * self._entries(code):
                self._grow(code)
                loc = self.get_pte(va)  # type: ignore[assignment]
        return loc  # type: ignore[return-value]

    def unmap_page(self, va: int) -> None:
        r0 = self._run("pt_lookup", va)
        at = self._at(r0, self.addrs["pt_lookup"]) if r0 else None
        code = 0
        if at is not None:
            for order in PAGE_SIZE_ORDERS:  # the page that covers va
                base = va & -(PAGE_SIZE << order)
                if self.mapped.get(base) == order:
                    code = PAGE_SIZE_ORDERS.index(order)
                    self._note_at(base, code, *at, -1)
                    break
        super().unmap_page(va)
        if at is not None:
            self._migrate(code, MIGRATE_PER_INSERT)
            self._shrink(code)

    def _shrink(self, code: int) -> None:
        """Start moving the size's table into one of half the buckets when
        it is below :data:`MIN_LOAD` and no resize is in progress."""
        r = self.regs[code]
        if r[2] or r[0] <= INITIAL_NB[code]:
            return
        if self._load(code) < MIN_LOAD * self._entries(code):
            self._grow(code, factor=0.5)
            self.shrinks += 1

    def get_pte(self, va: int, walk: bool = False) -> PteLoc | None:
        self.stats.lookups += 1
        if not walk:
            r0 = self._run("pt_lookup", va)
            return self._loc("pt_lookup", r0, self.addrs["pt_lookup"]) if r0 else None
        self.stats.walks += 1
        r0 = self._run("pt_lookup", va, engine=self.counter)
        loc = self._loc("pt_lookup", r0, self.walk_addrs) if r0 else None
        refs = self.counter.region_refs()
        if loc is not None:
            w, off = self._at(r0, self.walk_addrs)  # type: ignore[misc]
            if all((w, off >> 6) != (i, line) for i, line, _ in refs):
                refs.append((w, off >> 6, max((s for *_, s in refs), default=0) + 1))
        seen: dict[tuple[int, int], int] = {}
        for w, line, step in refs:
            seen.setdefault((w, line), step)
        out = []
        for (w, line), step in self.walk_filter(va, [(w, line, s) for (w, line), s in
                                                     seen.items()]):
            if w == 0 and line < self.meta_lines:
                continue  # the table registers: walker registers
            out.append((self.ways[w].start * (PAGE_SIZE // LINE) + line, step))
        self.stats.walk_lines += len(seen)
        self.last_walk = out
        self.walk_refs += len(out)
        return loc

    def walk_filter(self, va: int, refs: list) -> list:  # type: ignore[override]
        """((way, line), step) of the probes a walker with cuckoo walk caches
        makes (see :mod:`cwc`)."""
        pairs, sizes = self.cwc.probes(va) if self.walk_cache_on else (None, None)
        out = []
        for w, line, step in refs:
            where = self._where(w, line * LINE)
            if (where is None or (pairs is None and sizes is None)
                    or (pairs is not None and (where[0], where[1]) in pairs)
                    or (pairs is None and sizes is not None and where[0] in sizes)):
                out.append(((w, line), step))
        return out

    # -- the OS's side: walk tables, displacement, resizing -------------------------
    def _count(self, code: int) -> int:
        """Pages of size ``code`` mapped (the programs' header count)."""
        return U64.unpack_from(self.ways[0].buf, 8 * code)[0]

    def _load(self, code: int) -> int:
        """Entries of size ``code`` in use: the count the table's load is measured in."""
        return U64.unpack_from(self.ways[0].buf, 8 * (self.layout.load_word + code))[0]

    def _entries(self, code: int) -> int:
        """Entries the size's new table holds, over every way."""
        return WAYS * self.regs[code][0] * self.layout.per_bucket

    def _bump(self, code: int, word: int, delta: int) -> None:
        buf, off = self.ways[0].buf, 8 * (word + code)
        U64.pack_into(buf, off, U64.unpack_from(buf, off)[0] + delta)

    def _note_at(self, va: int, code: int, way: int, off: int, delta: int) -> None:
        where = self._where(way, off & -LINE)
        if where is not None:
            self.cwc.note(va, code, way, delta)

    def _note_entry(self, entry: bytes, code: int, way: int, delta: int) -> None:
        """Every page of ``entry`` entered (+1) or left (-1) ``way``."""
        for va in self.layout.pages(entry, 0):
            self.cwc.note(va, code, way, delta)

    def _get(self, way: int, off: int) -> bytes:
        return bytes(self.ways[way].buf[off:off + self.layout.size])

    def _set(self, way: int, off: int, entry: bytes) -> None:
        self.ways[way].buf[off:off + self.layout.size] = entry

    def _line(self, code: int, way: int, tag: int) -> int:
        """Offset of ``tag``'s bucket line in ``way``'s region, in the size's new table."""
        nb, base = self.regs[code][0], self.regs[code][1]
        return base + bucket(tag, way, nb) * LINE

    def _moved(self, way: int, *offs: int) -> None:
        first = self.ways[way].start * (PAGE_SIZE // LINE)
        for off in offs:
            self.moved_lines.append(range(first + off // LINE, first + off // LINE + 1))

    def _displace(self, entry: bytes, code: int) -> bool:
        """Insert ``entry`` into the size's new table by cuckoo kicks; True
        when every entry found a bucket (the counts are the caller's)."""
        lay = self.layout
        empty = bytes(lay.size)
        way = self.rng.randrange(WAYS)
        for _ in range(MAX_KICKS):
            off = self._line(code, way, lay.tag(entry, 0))
            self._moved(way, off)
            for s in range(lay.per_bucket):
                if self._get(way, off + lay.size * s) == empty:
                    self._set(way, off + lay.size * s, entry)
                    self._note_entry(entry, code, way, +1)
                    return True
            s = self.rng.randrange(lay.per_bucket)
            victim = self._get(way, off + lay.size * s)
            self._set(way, off + lay.size * s, entry)
            self._note_entry(entry, code, way, +1)
            self._note_entry(victim, code, way, -1)
            self.kicks += 1
            entry = victim
            way = (way + 1 + self.rng.randrange(WAYS - 1)) % WAYS
        self._pending = entry
        return False

    def _grow(self, code: int, force: bool = False, factor: float = 2) -> None:
        """Start a resize of the size's table to ``factor`` times its buckets
        (finishing any in progress)."""
        pending = getattr(self, "_pending", None) if force else None
        self._pending = None
        r = self.regs[code]
        if r[2]:
            self._migrate(code, r[2])
        new_nb = max(1, int(r[0] * factor))
        need = new_nb * LINE
        if self.top + need > self.ways[0].size:
            self._copy_regions(code, new_nb)
        else:
            r[2], r[3], r[4] = r[0], r[1], 0
            r[0], r[1] = new_nb, self.top
            self.top += need
            self._write_regs()
        self.resizes += 1
        self.walk_cache.clear()
        if pending is not None and not self._displace(pending, code):
            self._grow(code, force=True)

    def _copy_regions(self, code: int, new_nb: int) -> None:
        """Move everything to regions with room for the new table."""
        old_ways, old_regs = list(self.ways), [list(r) for r in self.regs]
        r = self.regs[code]
        r[2], r[0] = r[0], new_nb
        want = -(-self._need() * 2 // PAGE_SIZE)
        try:
            self._install(want)  # formats: new bases for every table
        except Exception:
            self.regs = old_regs
            raise
        self.ways[0].buf[0:LINE] = old_ways[0].buf[0:LINE]  # the counts
        for w in range(WAYS):
            buf, src = self.ways[w].buf, old_ways[w].buf
            for c in range(3):
                o, n = old_regs[c], self.regs[c]
                size = o[0] * LINE
                dst = n[3] if c == code else n[1]
                buf[dst:dst + size] = src[o[1]:o[1] + size]
                if c != code and o[2]:
                    size2 = o[2] * LINE
                    buf[n[3]:n[3] + size2] = src[o[3]:o[3] + size2]
        for c in range(3):
            if c != code and old_regs[c][2]:
                self.regs[c][4] = old_regs[c][4]
        self.regs[code][4] = 0
        self._write_regs()
        for old in old_ways:
            self._charge(old)
            self.mm.regions.free(old)
        for new in self.ways:
            self._charge(new)
        self.copies += 1

    def _migrate(self, code: int, rows: int) -> None:
        """Move ``rows`` bucket rows of the size's old table into the new one."""
        lay, r = self.layout, self.regs[code]
        empty = bytes(lay.size)
        for _ in range(rows):
            if not r[2]:
                return
            p, old_nb, old_base = r[4], r[2], r[3]
            moving = []
            off = old_base + p * LINE
            for way in range(WAYS):
                self._moved(way, off)
                for s in range(lay.per_bucket):
                    entry = self._get(way, off + lay.size * s)
                    if entry != empty:
                        moving.append((entry, way))
                        self._set(way, off + lay.size * s, empty)
            r[4] = p + 1
            if r[4] >= old_nb:
                r[2] = r[3] = r[4] = 0
            self._write_regs()
            for entry, way in moving:
                self._note_entry(entry, code, way, -1)
                self.migrated += 1
                if not self._displace(entry, code):
                    self._grow(code, force=True)


def _padded(addrs: list[int]) -> list[int]:
    """Region addresses for the context's MAX_PT_REGIONS entries (unused: the first)."""
    return addrs + [addrs[0]] * (MAX_PT_REGIONS - len(addrs))
