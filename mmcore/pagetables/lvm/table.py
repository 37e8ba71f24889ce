"""The LVM-like learned page table: ``programs/lvm_pt.s`` over up to
:data:`~mmcore.hooks.specs.MAX_PT_REGIONS` small regions, trained here.

Regions: all of one size (``region_size``, the verifier's bound), taken
from the MM's region allocator on demand; the first holds the index
(:mod:`.index`), every one holds leaf slot arrays (:mod:`.space`).  The
context gives the programs every region's address (``region``,
``region1`` ..; unused entries repeat the first).  When the regions are
all in use and a leaf finds no room, the table is built again whole in
regions of twice the size (a *grow*).

Training: a full build (:meth:`LvmPageTable.refit`, and every grow) cuts
the keys into leaves, groups the leaves into internal nodes
(:func:`~.index.group_all`) and fits the root over the nodes; when
``pt_map`` returns 0 (the key's window in its leaf is full), only that
leaf is fitted again with its keys and the new one (a *leaf retrain*), in
a new extent; when it splits, the new leaves' bounds go into the node
above it, which is fitted again (a *node retrain*, a linear fit over at
most :data:`~.index.NODE_LEAVES` bounds); a node that no longer fits its
leaves within its error bound is cut in two, and the root is fitted again
over the nodes (a *root retrain*, over at most :data:`~.index.NMAX`
bounds).  Every line a retrain or build reads or writes is appended to
``moved_lines``.

Model cache: the walker keeps the root model and the node count in
registers (the region's first two lines) and caches the index's other
lines -- the node bounds and records, the leaf bounds it searches and the
leaf records -- in a dedicated cache of ``model_cache`` entries
(LRU), apart from any page-walk cache; a hit costs nothing.  A retrain
flushes it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmcore.constants import PAGE_SHIFT, PAGE_SIZE, PAGE_SIZE_ORDERS
from mmcore.errors import PageTableError, RegionError
from mmcore.hooks.specs import MAX_PT_REGIONS, PT_LOOKUP, PT_MAP, PT_UNMAP
from mmcore.pagetables.latency import dedupe
from mmcore.pagetables.loading import PtPrograms
from mmcore.pagetables.lvm.fit import FitConfig, FittedLeaf, Key, fit_keys, partition
from mmcore.pagetables.lvm.index import (
    BOUNDS_OFF,
    HDR_LEAVES,
    LINE,
    LMAX,
    META_END,
    NMAX,
    NODE,
    NODE_BOUNDS_OFF,
    NODE_ERR,
    NODE_LEAVES,
    NODE_RECS_OFF,
    NODES_OFF,
    REC,
    RECS_OFF,
    ROOT,
    ROOT_OFF,
    SLOT,
    LeafModel,
    Node,
    RootModel,
    fit_node,
    group,
    group_all,
    true_leaf,
)
from mmcore.pagetables.lvm.space import Extents
from mmcore.pagetables.progpt import CTX, PtDesign, PtStats, run_hook
from mmcore.pagetables.pte import U64, PteLoc, reserved_pte
from mmcore.pagetables.walkrec import WalkRecorder
from mmcore.phys.region import Region

if TYPE_CHECKING:
    from mmcore.mm import MM

MIN_REGION = 64 << 10  # the index takes 42,368 bytes of the first region
MAX_REGION = 64 << 20
MODEL_CACHE = 32  # entries (64-byte index lines)
META_LINES = -(-META_END // LINE)


@dataclass
class LvmStats(PtStats):
    leaf_retrains: int = 0
    node_retrains: int = 0
    root_retrains: int = 0
    builds: int = 0
    regions_added: int = 0
    model_hits: int = 0


class LvmPageTable:
    """The :class:`~mmcore.pagetables.pte.PageTable` protocol over ``programs/lvm_pt.s``."""

    def __init__(self, mm: MM, programs: PtPrograms, *, engine: str = "interp", nid: int = 0,
                 pid: int = 0, fit: FitConfig | None = None, model_cache: int = MODEL_CACHE,
                 walk_cache: bool | None = None, region_size: int = MIN_REGION) -> None:
        self.mm, self.programs, self.engine_kind = mm, programs, engine
        self.nid, self.pid = nid, pid
        self.fit = fit or FitConfig()
        self.model_cache_size = model_cache
        self.walk_cache_on = mm.config.pwc if walk_cache is None else walk_cache
        self.walk_cache: OrderedDict[int, None] = OrderedDict()  # the model cache
        self.walk_refs = 0
        self.last_walk: list[tuple[int, int]] = []
        self.moved_lines: list[range] = []
        self.stats = LvmStats()
        self.trainer = None
        self.mapped: dict[int, int] = {}
        self.ctx = bytearray(CTX.size)
        self.regions: list[Region] = []
        self.leaves: list[LeafModel] = []
        self.bounds: list[int] = []
        self.nodes: list[Node] = []
        self.size = 0
        self._open(region_size)
        self._build([], region_size)

    # -- regions and engines ------------------------------------------------------
    def _open(self, size: int) -> None:
        """Fresh engines and recorder for regions of ``size`` bytes."""
        self.size = size
        self.engines = self.programs.engines(size, self.engine_kind)
        self.recorder = WalkRecorder(self.programs.for_region(size)[PT_LOOKUP.name],
                                        self.programs.helpers)
        self.space = Extents(size)

    def _add_region(self) -> None:
        if len(self.regions) >= MAX_PT_REGIONS:
            raise RegionError("no more regions")
        region = self.mm.regions.alloc(self.size // PAGE_SIZE, self.nid)
        self.regions.append(region)
        self.space.add_region()
        self._address()
        self.stats.regions_added += 1

    def _address(self) -> None:
        bufs = [r.buf for r in self.regions]
        self.addrs = {}
        for hook, eng in self.engines.items():
            got = [eng.address_of(b, "region") for b in bufs]
            self.addrs[hook] = got + [got[0]] * (MAX_PT_REGIONS - len(got))
        got = self.recorder.watch_all(bufs)
        self.walk_addrs = got + [got[0]] * (MAX_PT_REGIONS - len(got))

    def table_pages(self) -> int:
        return sum(r.npages for r in self.regions)

    def destroy(self) -> None:
        for r in self.regions:
            self.mm.regions.free(r)
        self.regions = []

    # -- running the programs -----------------------------------------------------
    def _run(self, hook: str, va: int, shift: int = PAGE_SHIFT, walk: bool = False) -> int:
        assert self.regions, "page table used after destroy()"
        a = self.walk_addrs if walk else self.addrs[hook]
        CTX.pack_into(self.ctx, 0, a[0], self.size, va, self.pid, shift, *a[1:])
        return run_hook(self.stats, hook, va, self.recorder if walk else self.engines[hook],
                        self.ctx)

    def _loc(self, hook: str, r0: int, addrs: list[int]) -> PteLoc | None:
        for i, region in enumerate(self.regions):
            off = r0 - addrs[i]
            if 0 <= off <= self.size - 8:
                if off % 8 or (i == 0 and off < META_END):
                    break
                return region.start + off // PAGE_SIZE, off % PAGE_SIZE
        self.stats.bad_pointers += 1
        self.stats.last_error = f"{hook}: returned {r0:#x}, not a PTE slot of the regions"
        return None

    # -- the PageTable protocol -----------------------------------------------------
    def map_page(self, va: int, size_order: int = 0) -> PteLoc:
        self.stats.maps += 1
        for _ in range(3):
            r0 = self._run(PT_MAP.name, va, PAGE_SHIFT + size_order)
            if r0:
                loc = self._loc(PT_MAP.name, r0, self.addrs[PT_MAP.name])
                if loc is None:
                    raise PageTableError(f"{va:#x}: pt_map returned an invalid pointer")
                self.mapped[va] = size_order
                return loc
            code = PAGE_SIZE_ORDERS.index(size_order)
            self._retrain((va >> PAGE_SHIFT, code, reserved_pte(size_order)))
        raise PageTableError(f"{va:#x}: no room in the page table after retraining")

    def unmap_page(self, va: int) -> None:
        self.stats.unmaps += 1
        if self._run(PT_UNMAP.name, va) != 0:
            raise PageTableError(f"{va:#x}: not mapped")
        for order in PAGE_SIZE_ORDERS:
            base = va & -(PAGE_SIZE << order)
            if self.mapped.get(base) == order:
                del self.mapped[base]
                break

    def get_pte(self, va: int, walk: bool = False) -> PteLoc | None:
        self.stats.lookups += 1
        if not walk:
            r0 = self._run(PT_LOOKUP.name, va)
            return self._loc(PT_LOOKUP.name, r0, self.addrs[PT_LOOKUP.name]) if r0 else None
        self.stats.walks += 1
        r0 = self._run(PT_LOOKUP.name, va, walk=True)
        loc = self._loc(PT_LOOKUP.name, r0, self.walk_addrs) if r0 else None
        self.walk_refs += self._cost(self.recorder.region_refs())
        return loc

    def _cost(self, refs: list[tuple[int, int, int]]) -> int:
        """Memory references of a walk (model cache applied); sets :attr:`last_walk`."""
        lines = dedupe([((i << 40) | line, step) for i, line, step in refs])
        self.stats.walk_lines += len(lines)
        cache, out = self.walk_cache, []
        for key, step in lines:
            i, line = key >> 40, key & ((1 << 40) - 1)
            if i == 0 and line < META_LINES:
                if line * LINE < NODE_BOUNDS_OFF:
                    continue  # the root model and the node count: walker registers
                if self.walk_cache_on:
                    if line in cache:
                        cache.move_to_end(line)
                        self.stats.model_hits += 1
                        self.stats.cache_hits += 1
                        continue
                    cache[line] = None
                    if len(cache) > self.model_cache_size:
                        cache.popitem(last=False)
            out.append((self.regions[i].start * (PAGE_SIZE // LINE) + line, step))
        self.last_walk = out
        return len(out)

    # -- the index in memory --------------------------------------------------------
    def _leaf_keys(self, leaf: LeafModel) -> list[Key]:
        buf, out = self.regions[leaf.region].buf, []
        for s in range(leaf.slots):
            tag, pte = SLOT.unpack_from(buf, leaf.base + s * SLOT.size)
            if tag:
                out.append((tag >> 4, (tag >> 2) & 3, pte))
        return out

    def entries(self) -> list[Key]:
        """(vpn, size code, PTE) of every page in the table, sorted."""
        return sorted(k for leaf in self.leaves for k in self._leaf_keys(leaf))

    def _lines(self, region: int, off: int, nbytes: int) -> range:
        first = self.regions[region].start * (PAGE_SIZE // LINE) + off // LINE
        return range(first, first + -(-nbytes // LINE))

    def _place(self, fitted: FittedLeaf) -> LeafModel:
        """Give a fitted leaf an extent (adding a region when none is free) and write it."""
        model = fitted.model
        got = self.space.alloc(model.nbytes)
        while got is None:
            self._add_region()  # RegionError when the table has all its regions
            got = self.space.alloc(model.nbytes)
        model.region, model.base = got
        buf = self.regions[model.region].buf
        buf[model.base:model.base + model.nbytes] = bytes(model.nbytes)
        for s, (tag, pte) in fitted.slots.items():
            SLOT.pack_into(buf, model.base + s * SLOT.size, tag, pte)
        self.moved_lines.append(self._lines(model.region, model.base, model.nbytes))
        return model

    def _write_index(self, first: int = 0, root: bool = True) -> None:
        """Write the nodes (and, when ``root``, the root), the bounds and the
        leaf records from leaf ``first`` on."""
        buf = self.regions[0].buf
        U64.pack_into(buf, HDR_LEAVES, len(self.leaves))
        if root:
            starts = [self.bounds[n.first] if j else 0 for j, n in enumerate(self.nodes)]
            model = RootModel.fit(starts)
            ROOT.pack_into(buf, ROOT_OFF, model.lo, model.slope, model.shift, model.err)
            U64.pack_into(buf, NODES_OFF, len(self.nodes))
            for j, start in enumerate(starts):
                U64.pack_into(buf, NODE_BOUNDS_OFF + 8 * j, start)
            self.moved_lines.append(self._lines(0, NODE_BOUNDS_OFF, 8 * len(starts)))
        for j, node in enumerate(self.nodes):
            buf[NODE_RECS_OFF + NODE.size * j:NODE_RECS_OFF + NODE.size * (j + 1)] = \
                node.record()
        self.moved_lines.append(self._lines(0, NODE_RECS_OFF, NODE.size * len(self.nodes)))
        for i in range(first, len(self.leaves)):
            U64.pack_into(buf, BOUNDS_OFF + 8 * i, self.bounds[i])
            buf[RECS_OFF + REC.size * i:RECS_OFF + REC.size * (i + 1)] = self.leaves[i].record()
        self.moved_lines.append(self._lines(0, BOUNDS_OFF + 8 * first,
                                            8 * (len(self.leaves) - first)))
        self.moved_lines.append(self._lines(0, RECS_OFF + REC.size * first,
                                            REC.size * (len(self.leaves) - first)))
        self.walk_cache.clear()

    def _counts(self, keys: list[Key]) -> None:
        counts = [0, 0, 0]
        for _, code, _ in keys:
            counts[code] += 1
        for code, n in enumerate(counts):
            U64.pack_into(self.regions[0].buf, 8 * code, n)

    # -- training ---------------------------------------------------------------------
    def _max_slots(self) -> int:
        return (self.size // 2) // SLOT.size

    def _build(self, keys: list[Key], size: int) -> None:
        """Lay the whole table out in fresh regions of ``size`` bytes or more."""
        old = self.regions
        for r in old:
            self.moved_lines.append(self._lines(old.index(r), 0, r.size))
        while True:
            if size > MAX_REGION:
                raise PageTableError(f"{len(keys)} pages do not fit in the largest regions")
            self.regions = []
            self._open(size)
            try:
                self._add_region()
                max_slots = self._max_slots()
                pieces = partition(keys, self.fit, int(max_slots / self.fit.gap / 1.5), LMAX // 2)
                fitted = [f for p in pieces for f in fit_keys(p, self.fit, max_slots)]
                if len(fitted) > LMAX:
                    raise RegionError("too many leaves")
                self.leaves = [self._place(f) for f in fitted]
            except RegionError:
                self.destroy()
                size *= 2
                continue
            break
        self.bounds = [0] + [f.first for f in fitted[1:]]
        self.nodes = group_all(self.bounds)
        self._write_index()
        self._counts(keys)
        for r in old:
            self.mm.regions.free(r)
        self.stats.builds += 1
        self.stats.rebuilds += 1
        if old:
            self.stats.grows += size != old[0].size

    def refit(self) -> None:
        """Build the whole index again (regions of the same size)."""
        self._build(self.entries(), self.size)
        self.stats.refits += 1

    def _all_but(self, i: int, keys: list[Key]) -> list[Key]:
        """Every key of the table with leaf ``i``'s replaced by ``keys``, sorted
        (leaf ``i``'s extent may already be reused)."""
        return sorted(keys + [k for j, leaf in enumerate(self.leaves) if j != i
                              for k in self._leaf_keys(leaf)])

    def _retrain(self, pending: Key) -> None:
        """Fit the leaf that owns ``pending`` again, with it (a reserved PTE)."""
        i = true_leaf(self.bounds, pending[0])
        leaf = self.leaves[i]
        keys = sorted([*self._leaf_keys(leaf), pending])
        self.moved_lines.append(self._lines(leaf.region, leaf.base, leaf.nbytes))
        fitted = fit_keys(keys, self.fit, self._max_slots(), self.bounds[i])
        if len(self.leaves) - 1 + len(fitted) > LMAX:
            self._build(self._all_but(i, keys), self.size)
            return
        self.space.release(leaf.region, leaf.base, leaf.nbytes)
        try:
            models = [self._place(f) for f in fitted]
        except RegionError:
            self._build(self._all_but(i, keys), self.size * 2)
            return
        self.leaves[i:i + 1] = models
        self.bounds[i + 1:i + 1] = [f.first for f in fitted[1:]]
        self.stats.leaf_retrains += 1
        regrouped = self._regroup(i, len(fitted) - 1) if len(fitted) > 1 else False
        self._write_index(i, root=regrouped)
        buf = self.regions[0].buf
        off = 8 * pending[1]
        U64.pack_into(buf, off, U64.unpack_from(buf, off)[0] + 1)

    def _regroup(self, i: int, added: int) -> bool:
        """Leaf ``i`` became ``added + 1`` leaves: fit its node again, cut it
        when its line no longer fits (regrouping every leaf when the nodes
        would be too many); True when the nodes changed (the root is fitted
        again)."""
        n = next(j for j, node in enumerate(self.nodes)
                 if node.first <= i < node.first + node.count)
        old = self.nodes[n]
        for j in range(n + 1, len(self.nodes)):
            node = self.nodes[j]
            self.nodes[j] = Node(node.model, node.first + added, node.count)
        node = fit_node(self.bounds, old.first, old.count + added)
        self.stats.node_retrains += 1
        if node.model.err <= max(NODE_ERR, old.model.err) and node.count <= NODE_LEAVES:
            self.nodes[n] = node
            return False
        self.nodes[n:n + 1] = group(self.bounds, old.first, node.count)
        if len(self.nodes) > NMAX:
            self.nodes = group_all(self.bounds)
        self.stats.root_retrains += 1
        return True

    def check(self) -> list[str]:
        """Inconsistencies between the index and the pages mapped (empty: none)."""
        problems = []
        for vpn, code, _ in self.entries():
            va = vpn << PAGE_SHIFT
            if self.mapped.get(va) != PAGE_SIZE_ORDERS[code]:
                problems.append(f"{va:#x}: in the table, not mapped")
        if len(self.entries()) != len(self.mapped):
            problems.append(f"{len(self.entries())} entries for {len(self.mapped)} pages")
        return problems

    @property
    def info(self) -> dict[str, Any]:
        return {"leaves": len(self.leaves), "regions": len(self.regions),
                "region_kib": self.size >> 10, "leaf_retrains": self.stats.leaf_retrains,
                "nodes": len(self.nodes), "node_retrains": self.stats.node_retrains,
                "root_retrains": self.stats.root_retrains, "builds": self.stats.builds,
                "grows": self.stats.grows}


LVM = PtDesign(
    name="lvm",
    capacity=lambda nbytes: max(nbytes - META_END, 0) // SLOT.size,  # of the first region
    max_load=1 / FitConfig().gap,
    meta_end=lambda nbytes: META_END,
)
"""What the study lists about the design (the table is :class:`LvmPageTable`)."""
