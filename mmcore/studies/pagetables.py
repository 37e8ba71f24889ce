"""The page-table study: radix vs hashed vs learned on several address-space layouts.

For every (layout, table) pair a fresh machine runs one process whose page
table is the built-in radix tree or a program table
(:class:`~mmcore.pagetables.progpt.ProgramPageTable` with ``programs/hashed_pt.s`` or
``programs/learned_pt.s``).  The layout's VMAs are mapped and touched (each
touch is a fault through the page-table interface), the learned table's
trainer makes its periodic pass, then ``walks`` hardware walks are made at
random addresses of the touched pages, once with the page-walk cache (the
radix PWC; the program tables' metadata-line cache of the same number of
entries) and once without.  Reported per pair:

* ``refs_pwc`` / ``refs_nopwc``: memory references per walk (radix: levels
  read; program tables: distinct region lines loaded plus the PTE line);
* ``pt_mib_per_gib``: page-table memory (table pages, or region pages) per
  GiB mapped;
* ``region_kib`` and ``region_order``: the physically contiguous block the
  table needs (radix: one page, order 0; program tables: the region and
  the buddy order a region of that size is carved from);
* from a workload of ``accesses`` accesses of the configured ``stream``
  through a TLB and the cache hierarchy of ``[cache]``
  (:mod:`mmcore.studies.ptworkload`): ``walks``, ``refs_walk`` (memory
  references per walk, walk caches on), ``cyc_mean`` / ``cyc_p99`` (cycles
  per walk, :mod:`mmcore.pagetables.latency`) and ``xlat_share`` (share of
  the workload's memory time spent walking);
* ``rebuild_cyc_per_fault``: cycles of every line rebuilds, resizes and
  displacements read or wrote while the layout was faulted in, priced
  through a cold hierarchy, per fault (= Mcycles per million faults).

Tables: ``radix`` (the built-in 4-level tree with its PWC), ``hashed`` and
``learned`` (the naive programs), ``hashed_c`` (the hashed program built
from C), ``ecpt`` (the elastic cuckoo table with clustered entries,
``programs/cuckoo_pt.s`` with
:class:`~mmcore.pagetables.ecpt.table.CuckooPageTable`), ``ecpt_unclustered``
(the same with one tag per page, ``programs/cuckoo_unclustered_pt.s``) and
``lvm`` (the LVM-like learned table).

The configuration is a TOML file (``programs/pt_study.toml``); errors read
``file: key: message``.  This module measures; printing is the CLI's.
"""

from __future__ import annotations

import random
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bpfvm.errors import BpfvmError
from bpfvm.limits import MAX_TEXT_FILE, read_bounded
from mmcore.constants import ORDER_1G, ORDER_2M, ORDER_4K, PAGE_SIZE
from mmcore.errors import ScenarioError
from mmcore.mm import MM, MMConfig
from mmcore.pagetables.ecpt.table import ECPT, ECPT_UNCLUSTERED, LAYOUTS, CuckooPageTable
from mmcore.pagetables.latency import CacheHierarchy, CacheLevel, HierarchyConfig
from mmcore.pagetables.loading import PtPrograms
from mmcore.pagetables.lvm.table import LVM, LvmPageTable
from mmcore.pagetables.progpt import HASHED, ProgramPageTable, PtDesign, program_table
from mmcore.pagetables.trainer import LEARNED
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.scenario.schema import MAX_MACHINE_MEMORY, parse_size
from mmcore.studies.procmaps import MapsVma, read_maps
from mmcore.studies.ptworkload import STREAMS, addresses, price_lines, run_stream
from mmcore.virt.process import HUGE_MODES, Vma

PROGRAMS = Path(__file__).resolve().parents[2] / "programs"
DEFAULT_CONFIG = PROGRAMS / "pt_study.toml"
TABLES: dict[str, tuple[PtDesign, str] | None] = {
    "radix": None, "hashed": (HASHED, "hashed_pt.s"), "learned": (LEARNED, "learned_pt.s"),
    "hashed_c": (HASHED, "hashed_pt.c"), "ecpt": (ECPT, "cuckoo_pt.s"),
    "ecpt_unclustered": (ECPT_UNCLUSTERED, "cuckoo_unclustered_pt.s"), "lvm": (LVM, "lvm_pt.s")}
UNIT = {"none": ORDER_4K, "thp": ORDER_2M, "1g": ORDER_1G}


@dataclass(frozen=True)
class VmaSpec:
    size: int
    huge: str = "none"
    touch: float = 1.0  # share of the VMA's pages (of its page size) touched
    count: int = 1


@dataclass(frozen=True)
class VmaLayout:
    name: str
    doc: str
    vmas: tuple[VmaSpec, ...]
    fixed: tuple[MapsVma, ...] = ()  # a recorded address space, replayed in place


def maps_layout(path: str | Path) -> VmaLayout:
    """The layout of a recorded ``/proc/PID/maps`` (:mod:`mmcore.studies.procmaps`)."""
    vmas = tuple(read_maps(path))
    pages = sum(v.touched_pages for v in vmas)
    return VmaLayout(Path(path).stem, f"recorded: {len(vmas)} VMAs, {pages} resident pages",
                     (), vmas)


@dataclass(frozen=True)
class StudyConfig:
    layouts: tuple[VmaLayout, ...]
    tables: tuple[str, ...] = ("radix", "hashed", "learned")
    machine: int = 4 << 30
    walks: int = 4000
    seed: int = 1
    accesses: int = 20000
    stream: str = "zipf"
    zipf_s: float = 0.99
    cache: HierarchyConfig = field(default_factory=HierarchyConfig)


@dataclass
class Row:
    layout: str
    table: str
    mapped_pages: int  # pages mapped, of any size
    mapped_mib: float
    refs_pwc: float
    refs_nopwc: float
    pt_pages: int
    pt_mib_per_gib: float
    region_kib: int
    region_order: int
    rebuilds: int = 0
    build_s: float = 0.0
    walks: int = 0
    refs_walk: float = 0.0
    cyc_mean: float = 0.0
    cyc_p99: float = 0.0
    xlat_share: float = 0.0
    rebuild_cyc_per_fault: float = 0.0
    regions: str = ""  # regions the table holds: count x KiB
    retrains_per_mfault: float = 0.0  # learned tables' leaf retrains per million faults
    extra: dict[str, Any] = field(default_factory=dict)


# -- configuration -------------------------------------------------------------
def _get(file: str, table: dict, key: str, path: str, conv: Callable[[Any], Any],
         default: Any = None) -> Any:
    if key not in table:
        if default is None:
            raise ScenarioError(file, f"{path}{key}", "missing")
        return default
    try:
        return conv(table[key])
    except (TypeError, ValueError) as exc:
        raise ScenarioError(file, f"{path}{key}", str(exc)) from None


def _unknown(file: str, table: dict, known: set[str], path: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise ScenarioError(file, f"{path}{extra[0]}", "unknown key")


def _table(file: str, v: Any, path: str) -> dict:
    if not isinstance(v, dict):
        raise ScenarioError(file, path or "(top)", "must be a table")
    return v


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if v not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {v!r}")
        return v
    return conv


def _number(lo: float, hi: float, kind: type = float) -> Callable[[Any], Any]:
    def conv(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else int):
            raise TypeError(f"expected {'a number' if kind is float else 'an integer'}, "
                            f"got {v!r}")
        if not lo <= v <= hi:
            raise ValueError(f"must be in {lo}..{hi}")
        return kind(v)
    return conv


CACHE_KEYS = ("l1", "l2", "llc")


def parse_cache(file: str, raw: Any) -> HierarchyConfig:
    """``[cache]``: l1/l2/llc ``_size`` and ``_cycles``, ``dram_cycles``."""
    raw = _table(file, raw, "cache")
    known = {f"{k}_{f}" for k in CACHE_KEYS for f in ("size", "cycles")} | {"dram_cycles"}
    _unknown(file, raw, known, "cache.")
    d = HierarchyConfig()
    levels = tuple(CacheLevel(
        lvl.name, _get(file, raw, f"{k}_size", "cache.", parse_size, lvl.size),
        _get(file, raw, f"{k}_cycles", "cache.", _number(1, 10**4, int), lvl.latency))
        for k, lvl in zip(CACHE_KEYS, d.levels, strict=True))
    return HierarchyConfig(levels, _get(file, raw, "dram_cycles", "cache.",
                                        _number(1, 10**5, int), d.dram))


def parse_config(data: dict, file: str = "<study>") -> StudyConfig:
    _unknown(file, data, {"seed", "machine", "walks", "tables", "layout", "accesses", "stream",
                          "zipf_s", "cache"}, "")
    tables = _get(file, data, "tables", "", lambda v: tuple(_choice(tuple(TABLES))(t) for t in v),
                  ("radix", "hashed", "learned"))
    layouts = []
    raw = data.get("layout", [])
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(file, "layout", "expected at least one [[layout]] table")
    for i, lay in enumerate(raw):
        path = f"layout[{i}]."
        lay = _table(file, lay, path[:-1])
        _unknown(file, lay, {"name", "doc", "vma"}, path)
        name = _get(file, lay, "name", path, str)
        vmas = []
        rv = lay.get("vma")
        if not isinstance(rv, list) or not rv:
            raise ScenarioError(file, f"{path}vma", "expected a list of VMA tables")
        for j, v in enumerate(rv):
            vp = f"{path}vma[{j}]."
            v = _table(file, v, vp[:-1])
            _unknown(file, v, {"size", "huge", "touch", "count"}, vp)
            vmas.append(VmaSpec(
                _get(file, v, "size", vp, parse_size),
                _get(file, v, "huge", vp, _choice(HUGE_MODES), "none"),
                _get(file, v, "touch", vp, _number(0.0, 1.0), 1.0),
                _get(file, v, "count", vp, _number(1, 1 << 16, int), 1)))
        layouts.append(VmaLayout(name, _get(file, lay, "doc", path, str, ""), tuple(vmas)))
    return StudyConfig(
        tuple(layouts), tables,
        _get(file, data, "machine", "", _machine_size, 4 << 30),
        _get(file, data, "walks", "", _number(1, 10**7, int), 4000),
        _get(file, data, "seed", "", _number(0, 2**63, int), 1),
        _get(file, data, "accesses", "", _number(1, 10**8, int), 20000),
        _get(file, data, "stream", "", _choice(STREAMS), "zipf"),
        _get(file, data, "zipf_s", "", _number(0.0, 10.0), 0.99),
        parse_cache(file, data.get("cache", {})))


def _machine_size(v: Any) -> int:
    n = parse_size(v)
    if n > MAX_MACHINE_MEMORY:
        raise ValueError(f"more than the simulator's limit of {MAX_MACHINE_MEMORY >> 30}GiB")
    return n


def load_config(path: str | Path = DEFAULT_CONFIG) -> StudyConfig:
    try:
        text = read_bounded(path, MAX_TEXT_FILE, "study configuration").decode("utf-8")
        data = tomllib.loads(text)
    except BpfvmError as exc:
        raise ScenarioError(str(path), "(file)",
                            "cannot read: " + str(exc).removeprefix(f"{path}: ")) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(path), "(file)", f"not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), "(toml)", str(exc)) from None
    except ValueError:  # an integer past Python's digit limit
        raise ScenarioError(str(path), "(toml)", "a number has too many digits") from None
    return parse_config(data, str(path))


# -- measuring -------------------------------------------------------------------
def _build(mm: MM, layout: VmaLayout, factory: Any, rng: random.Random) -> tuple[Any, list]:
    """Spawn the process, map and touch the layout; (process, touched (va, order))."""
    proc = mm.spawn(page_table=factory)
    touched = []
    for vma in layout.fixed:  # a recorded address space: each VMA at its own address
        proc.insert_vma(Vma(vma.start, vma.end, "none"))
        proc.next_va = max(proc.next_va, vma.end + (1 << 30))
        n = (vma.end - vma.start) >> 12
        for i in sorted(rng.sample(range(n), vma.touched_pages)):
            va = vma.start + (i << 12)
            if proc.access(va) < 0:
                raise ScenarioError(layout.name, "vma", f"fault at {va:#x} failed "
                                    f"(out of memory or page table full)")
            touched.append((va, PAGE_SIZE))
    for spec in layout.vmas:
        for _ in range(spec.count):
            start = proc.mmap(spec.size, huge=spec.huge)
            step = PAGE_SIZE << UNIT[spec.huge]
            n = spec.size // step
            k = round(n * spec.touch)
            idx = range(n) if k == n else sorted(rng.sample(range(n), k))
            for i in idx:
                va = start + i * step
                if proc.access(va) < 0:
                    raise ScenarioError(layout.name, "vma", f"fault at {va:#x} failed "
                                        f"(out of memory or page table full)")
                touched.append((va, step))
    return proc, touched


def _walk_cost(pt: Any, touched: list, n: int, rng: random.Random, pwc: bool) -> float:
    if _programmed(pt):
        pt.walk_cache_on = pwc
        pt.walk_cache.clear()
    else:
        saved = pt.pwc
        pt.pwc = saved if pwc else None
        if saved is not None:
            saved.flush()
    picks = [touched[rng.randrange(len(touched))] for _ in range(n)]
    for va, step in picks[: n // 4]:  # warm the caches
        pt.get_pte(va + rng.randrange(step) // 8 * 8, walk=True)
    before = pt.walk_refs
    for va, step in picks:
        if pt.get_pte(va + rng.randrange(step) // 8 * 8, walk=True) is None:
            raise AssertionError(f"{va:#x}: touched but the page table does not find it")
    if not _programmed(pt):
        pt.pwc = saved
    return (pt.walk_refs - before) / n


def _programmed(pt: Any) -> bool:
    return isinstance(pt, (ProgramPageTable, LvmPageTable))


def measure(layout: VmaLayout, table: str, cfg: StudyConfig, engine: str = "interp",
            programs: dict[str, PtPrograms] | None = None) -> Row:
    """Build ``layout`` under ``table`` on a fresh machine and measure it."""
    # 1g mappings fault from the hugetlb pool: surplus pages on demand
    mm = MM(MachineSpec((NodeSpec(cfg.machine // PAGE_SIZE),)),
            MMConfig(pwc=True, hugetlb_overcommit=cfg.machine >> 30))
    rng = random.Random(f"{cfg.seed}:{layout.name}")
    entry = TABLES[table]
    if entry is None:
        factory = None
    else:
        design, source = entry
        progs = (programs or {}).get(table) or PtPrograms.from_file(PROGRAMS / source)
        if design.name in LAYOUTS:
            def factory(mm: MM) -> CuckooPageTable:
                return CuckooPageTable(mm, progs, engine=engine, seed=cfg.seed,
                                       layout=LAYOUTS[design.name])
        elif design is LVM:
            def factory(mm: MM) -> LvmPageTable:
                return LvmPageTable(mm, progs, engine=engine)
        else:
            factory = program_table(design, progs, engine=engine)
    t0 = time.perf_counter()
    proc, touched = _build(mm, layout, factory, rng)
    pt = proc.pt
    if isinstance(pt, ProgramPageTable) and pt.trainer is not None:
        pt.refit()  # the naive learned table's periodic pass (LVM retrains as it goes)
    build_s = time.perf_counter() - t0
    walk_rng = random.Random(f"{cfg.seed}:walks:{layout.name}")
    refs_pwc = _walk_cost(pt, touched, cfg.walks, walk_rng, True)
    walk_rng = random.Random(f"{cfg.seed}:walks:{layout.name}")
    refs_nopwc = _walk_cost(pt, touched, cfg.walks, walk_rng, False)
    if _programmed(pt):
        pt.walk_cache_on = True
        pt.walk_cache.clear()
    stream_rng = random.Random(f"{cfg.seed}:stream:{layout.name}")
    work = run_stream(pt, mm.mem, addresses(touched, cfg.stream, cfg.accesses, stream_rng,
                                            cfg.zipf_s), CacheHierarchy(cfg.cache))
    moved = price_lines(getattr(pt, "moved_lines", ()), cfg.cache)
    mapped = proc.present
    mapped_bytes = sum(n * (PAGE_SIZE << o) for n, o in zip(mapped, UNIT.values(), strict=True))
    pages = pt.table_pages()
    regions, retrains = f"{pages}x{PAGE_SIZE >> 10}", 0.0
    if isinstance(pt, LvmPageTable):
        region_kib = pt.size >> 10
        order = (pt.size // PAGE_SIZE - 1).bit_length()
        regions = f"{len(pt.regions)}x{region_kib}"
        retrains = pt.stats.leaf_retrains * 1e6 / max(len(touched), 1)
        extra = {**pt.info, "rebuilds": pt.stats.builds, "model_hits": pt.stats.model_hits,
                 "faults": pt.stats.faults, "bad_pointers": pt.stats.bad_pointers}
    elif isinstance(pt, ProgramPageTable):
        block = pt.ways[0].npages if isinstance(pt, CuckooPageTable) else pages
        region_kib, order = block * PAGE_SIZE >> 10, (block - 1).bit_length()
        regions = f"{pages // block}x{region_kib}"
        extra = {k: v for k, v in asdict(pt.stats).items() if k in
                 ("rebuilds", "grows", "refits", "bad_pointers", "faults")}
        if isinstance(pt, CuckooPageTable):
            extra.update(rebuilds=pt.resizes, resizes=pt.resizes, region_copies=pt.copies,
                         kicks=pt.kicks, migrated=pt.migrated, cwc_hits=list(pt.cwc.hits),
                         live_kib=pt.live_bytes() >> 10)
    else:
        region_kib, order, extra = PAGE_SIZE >> 10, 0, {}
    mm.check()
    return Row(layout.name, table, sum(mapped), round(mapped_bytes / (1 << 20), 3),
               round(refs_pwc, 3), round(refs_nopwc, 3), pages,
               round(pages * PAGE_SIZE / (1 << 20) / (mapped_bytes / (1 << 30)), 2),
               region_kib, order, extra.get("rebuilds", 0), round(build_s, 2),
               work.walks, round(work.refs_per_walk, 3), round(work.cycles_mean, 1),
               work.cycles_p99, round(work.translation_share, 4),
               round(moved / max(len(touched), 1), 1), regions, round(retrains), extra)


def run_study(cfg: StudyConfig, engine: str = "interp", layouts: tuple[str, ...] = (),
              progress: Callable[[str, str], None] | None = None) -> list[Row]:
    """Every (layout, table) row of the study, layouts filtered by name."""
    known = {lay.name for lay in cfg.layouts}
    for name in layouts:
        if name not in known:
            raise ScenarioError("--layouts", name, f"no such layout (known: "
                                f"{', '.join(sorted(known))})")
    programs = {t: PtPrograms.from_file(PROGRAMS / e[1])
                for t, e in TABLES.items() if e is not None and t in cfg.tables}
    rows = []
    for lay in cfg.layouts:
        if layouts and lay.name not in layouts:
            continue
        for table in cfg.tables:
            if progress is not None:
                progress(lay.name, table)
            rows.append(measure(lay, table, cfg, engine, programs))
    return rows

