"""The scenario runner: drives an :class:`~mmcore.mm.MM` through a scenario's
phases tick by tick and returns metrics (final values and a time series).

Each tick: process arrivals (spawn, mmap with a page-size mode drawn from the
mix), each live process touching its next pages (faults; with ``touch_huge``
a fault touches the whole page it mapped) and making random references (TLB
and walks), optional partial munmaps, kernel churn (slab, network buffers,
page-table-like unmovable pages, drawn interleaved) with lifetimes, file reads
through the page cache, exits of processes whose lifetime ended, then the
background work (kernel expiry, kswapd), periodic kcompactd and, if set, an
evacuation of each node's normal zone.  The workload comes from seeded
streams that the policies cannot perturb (:mod:`mmcore.scenario.workload`):
a scenario and seed offer identical work on every side of a comparison and
give identical results; ``metrics["workload"]`` counts the work offered and
completed.

The scenario's ``[[attach]]`` programs are loaded (verified) and attached
before the first tick (:mod:`mmcore.scenario.attach`); ``attach=False`` runs the
built-in policies only, ``engines`` attaches ready engines by hook name
(over the scenario's own), ``programs`` (one per ``[[attach]]`` entry, as
:func:`~mmcore.scenario.attach.verified_programs` returns them) replaces
reading the programs' files, for a run on another machine.  Besides the
MM's metrics the runner measures what only the workload knows: the
distance of every random reference (``access``: local share and mean node
distance, the cost of a placement),
and per sample window the 2 MiB / 1 GiB allocation success rates, besides
the unmovable region's size, its resizes so far and live kernel memory.
"""

from __future__ import annotations

import random
import time
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path
from typing import Any

from bpfvm.program import Program
from mmcore.constants import ORDER_1G, PAGEBLOCK_ORDER
from mmcore.errors import OutOfMemoryError
from mmcore.hooks.dispatch import Engine
from mmcore.invariants import Checker
from mmcore.metrics import unmovable_pageblocks
from mmcore.mm import MM, MMConfig
from mmcore.pagetables.pte import pte_order
from mmcore.scenario.attach import attach_all
from mmcore.scenario.schema import KernelMix, Phase, Scenario, load_scenario, parse_scenario
from mmcore.scenario.seed import seed_snapshot
from mmcore.scenario.workload import HUGE_UNIT, Job, Ledger, mismatches, stream
from mmcore.sources import Source
from mmcore.virt.pagecache import File
from mmcore.virt.process import Process

Progress = Callable[[int, int], None]
DEFAULT_SCENARIO = "default.toml"


def default_scenario_path() -> Path:
    """The built-in demo scenario (``programs/default.toml``)."""
    return Path(str(resources.files("programs").joinpath(DEFAULT_SCENARIO)))


class Runner:
    def __init__(
        self,
        sc: Scenario,
        check: bool = False,
        engines: Mapping[str, Engine] | None = None,
        attach: bool = True,
        engine: str | None = None,
        programs: Sequence[Program] | None = None,
    ) -> None:
        self.sc, self.check = sc, check
        self.arrivals, self.kernel_rng, self.file_rng, self.slab_rng = (
            stream(sc.seed, name) for name in ("arrivals", "kernel", "files", "slab"))
        self.ledger = Ledger()
        cfg = MMConfig(sc.tlb, sc.compaction_proactiveness, sc.swappiness,
                       kcompactd_interval=sc.kcompactd_interval, scan_balance=sc.scan_balance,
                       **dict(sc.mm_options))
        self.mm = MM(sc.machine, cfg)
        self.seeded = seed_snapshot(self.mm, sc.machine.snapshot) if sc.machine.snapshot \
            else None
        self.attached = attach_all(sc, self.mm, engine, programs) if attach else []
        for hook, eng in (engines or {}).items():
            self.mm.hooks.attach(hook, eng)
        self.node_starts = [n.start for n in self.mm.phys.nodes]
        self.checker = Checker(self.mm, sc.check_interval) if check else None
        self.access = [0, 0, 0]  # references, local ones, sum of node distances
        self._huge_prev = [0, 0, 0, 0]  # 2M attempts/successes, 1G attempts/successes
        self.live: list[Job] = []
        self.files: dict[int, list[File]] = {}  # phase index -> files
        self.series: list[dict[str, Any]] = []

    # --- workload pieces ------------------------------------------------------
    @staticmethod
    def _count(rng: random.Random, rate: float) -> int:
        n = int(rate)
        return n + (rng.random() < rate - n)

    def _arrivals(self, ph: Phase, t: int) -> None:
        mix, rng, mm = ph.processes, self.arrivals, self.mm
        for _ in range(self._count(rng, mix.arrival_rate)):
            if len(self.live) >= mix.max_processes:  # the trace's jobs, started or not
                return
            modes, weights = zip(*mix.huge, strict=True)
            huge = rng.choices(modes, weights)[0]
            size = rng.randint(*mix.size) & -(2 << 20) or (2 << 20)
            if mix.home_nodes:
                home = mix.home_nodes[rng.randrange(len(mix.home_nodes))]
            else:
                home = rng.randrange(len(mm.phys.nodes))
            cold = bool(mix.hot_share) and rng.random() >= mix.hot_share
            exit_tick = t + rng.randint(*mix.lifetime)
            own = random.Random(rng.getrandbits(64))
            unit = HUGE_UNIT[huge] if mix.touch_huge else 4096
            try:
                proc: Process | None = mm.spawn(home_node=home)
            except OutOfMemoryError:
                proc = None  # counted in the MM's spawn_failures
            self.ledger.count("processes", 1, proc is not None)
            start = 0
            if proc is not None:
                start = proc.mmap(size, huge, 0 if cold or not mix.hot_share else 1000,
                                  mix.madvise)
            self.live.append(Job(proc, start, size, exit_tick, cold, unit, own))

    def _activity(self, ph: Phase) -> None:
        mix, ledger = ph.processes, self.ledger
        for x in self.live:
            if x.touched < x.size:
                end = min(x.size, x.touched + mix.faults_per_tick * x.unit)
                done = self._touch(x, end) if x.alive else 0
                ledger.count("touched_bytes", end - x.touched, done)
                x.touched = end
            if x.touched:
                n = mix.accesses_per_tick // mix.cold_access_divisor if x.cold else \
                    mix.accesses_per_tick
                vas = [x.start + (x.rng.randrange(x.touched) & -4096) for _ in range(n)]
                ledger.count("references", n, self._reference(x, vas) if x.alive else 0)
            if mix.munmap_share and x.touched >= x.size and x.rng.random() < mix.munmap_share:
                quarter = (x.size // 4) & -(2 << 20)
                if quarter:
                    off = x.rng.randrange(0, x.size - quarter + 1, 2 << 20)
                    ledger.count("munmaps", 1, x.alive)
                    if x.alive:
                        x.proc.munmap(x.start + off, quarter)  # type: ignore[union-attr]
                        x.proc.mmap(0)  # type: ignore[union-attr]  # keep the cursor moving
                        self.mm.stats.munmaps += 1

    def _touch(self, x: Job, end: int) -> int:
        """Populate ``[x.touched, end)`` of ``x``'s mapping, one fault per page
        the faults map; a failed fault abandons the rest of its touch unit.
        Returns the bytes populated."""
        p = x.proc
        assert p is not None
        va, stop, unit, done = x.start + x.touched, x.start + end, x.unit, 0
        if unit == 4096:  # the run of whole pages in one call, then a part page
            full = (stop - va) >> 12
            done = p.populate(va, full) << 12
            va += full << 12
            if va < stop and p.alive and p.access(va) >= 0 and p.alive:
                done += stop - va
            return done
        while va < stop:
            pfn = p.access(va)
            if not p.alive:
                break  # OOM-killed in its fault
            if pfn < 0:
                va = min(stop, (va & -unit) + unit) if unit > 4096 else va + 4096
                continue
            step = self._page_left(p, va) if unit > 4096 else 4096
            done += min(step, stop - va)
            va += step
        return done

    def _reference(self, x: Job, vas: list[int]) -> int:
        """Random references of ``x`` (TLB and walks); returns those completed."""
        p = x.proc
        assert p is not None
        dist = self.mm.phys.distance[p.home_node]
        starts, acc = self.node_starts, self.access
        done = 0
        for va in vas:
            pfn = p.access(va)
            if not p.alive:
                break
            if pfn >= 0:
                done += 1
                node = bisect_right(starts, pfn) - 1
                acc[0] += 1
                acc[1] += node == p.home_node
                acc[2] += dist[node]
        return done

    def _page_left(self, p: Process, va: int) -> int:
        """Bytes from ``va`` to the end of the page mapped there (4 KiB if none)."""
        loc = p.pt.get_pte(va)
        size = 4096 << pte_order(self.mm.mem.read(loc)) if loc is not None else 4096
        return size - (va & (size - 1))

    def _kernel(self, ph: Phase) -> None:
        k, rng, kern = ph.kernel, self.kernel_rng, self.mm.kernel
        nodes = len(self.mm.phys.nodes)
        # the tick's allocations of all sources, interleaved as they would arrive
        draws: list[Source | None] = [None] * self._count(rng, k.slab_rate)
        draws += [Source.NETBUF] * self._count(rng, k.netbuf_rate)
        draws += [Source.SLAB_UNMOVABLE] * self._count(rng, k.pagetable_rate)
        if len(draws) > len(set(draws)) > 1:
            rng.shuffle(draws)
        done = 0
        for source in draws:
            if source is None:
                recl = rng.random() < k.slab_reclaimable_share
                src = Source.SLAB_RECLAIMABLE if recl else Source.SLAB_UNMOVABLE
            else:
                src = source
            long = rng.random() < k.long_lived_share
            life = rng.randint(*(k.long_lifetime if long else k.lifetime))
            pfn = kern.alloc(src, rng.randint(*k.orders), life, site=int(long),
                             nid=rng.randrange(nodes))
            done += pfn >= 0
        self.ledger.count("kernel_allocs", len(draws), done)
        if k.object_rate:
            self._objects(k, nodes)

    def _objects(self, k: KernelMix, nodes: int) -> None:
        """Slab objects through the caches, with Pareto (long-tailed)
        lifetimes, from their own stream."""
        rng, slab = self.slab_rng, self.mm.slab
        names, weights = zip(*k.caches, strict=True)
        caches = [slab.by_name[n] for n in names]
        scale, cap = k.object_lifetime
        for cache in rng.choices(caches, weights, k=self._count(rng, k.object_rate)):
            life = min(cap, int(scale * rng.paretovariate(k.object_lifetime_alpha)))
            slab.alloc(cache, life, rng.randrange(nodes))

    def _file_io(self, i: int, ph: Phase) -> None:
        fm, rng = ph.file, self.file_rng
        if fm.files and i not in self.files:
            nodes = len(self.mm.phys.nodes)
            self.files[i] = [
                self.mm.new_file(fm.file_size >> 12, j % nodes) for j in range(fm.files)
            ]
        done = 0
        for _ in range(fm.reads_per_tick):
            f = rng.choice(self.files[i])
            done += f.read(int(f.npages * rng.random() ** 2)) >= 0  # skewed: low pages hot
        self.ledger.count("file_reads", fm.reads_per_tick, done)

    def _exits(self, t: int) -> None:
        keep = []
        for x in self.live:
            if x.exit_tick <= t:
                if x.alive:  # else never started or OOM-killed: already gone
                    self.mm.exit(x.proc)  # type: ignore[arg-type]
            else:
                keep.append(x)
        self.live = keep

    # --- driver -----------------------------------------------------------------
    def step(self, t: int) -> None:
        sc, mm = self.sc, self.mm
        mm.tick = t
        for i, ph in enumerate(sc.phases):
            if ph.start <= t < ph.end:
                self._arrivals(ph, t)
                self._activity(ph)
                self._kernel(ph)
                self._file_io(i, ph)
            elif t == ph.end and i in self.files:
                for f in self.files.pop(i):
                    mm.delete_file(f)
        self._exits(t)
        for tick, pages in sc.hugetlb_resize:
            if tick == t:
                mm.hugetlb.set_nr_hugepages(pages)
        mm.background()
        if sc.evacuate_interval and t and t % sc.evacuate_interval == 0:
            for node in mm.phys.nodes:
                mm.compact(node.nid, evacuate_normal=True)
        if self.checker is not None:
            self.checker.after(t, t == sc.duration - 1)

    def access_metrics(self) -> dict[str, Any]:
        n, local, dist = self.access
        return {
            "references": n,
            "local_share": round(local / n, 4) if n else None,
            "mean_distance": round(dist / n, 3) if n else None,
        }

    def _window_rates(self, h2: dict[str, int], h1: dict[str, int]) -> tuple:
        now = [h2["attempts"], h2["successes"], h1["attempts"], h1["successes"]]
        d = [a - b for a, b in zip(now, self._huge_prev, strict=True)]
        self._huge_prev = now
        return (d[1] / d[0] if d[0] else None, d[3] / d[2] if d[2] else None, d[0], d[2])

    def sample(self, t: int) -> dict[str, Any]:
        m = self.mm.metrics()
        zones = m["zones"]
        h2, h1 = m["huge_2m"], m["huge_1g"]
        w2, w1, n2, n1 = self._window_rates(h2, h1)
        return {
            "tick": t,
            "huge_2m_window_rate": w2,
            "huge_1g_window_rate": w1,
            "huge_2m_window_attempts": n2,
            "huge_1g_window_attempts": n1,
            "pageblocks_unmovable_share": round(
                m["pageblocks_unmovable_pages"] / m["pageblocks_total"], 4
            ),
            "compaction_runs": m["compaction"]["runs"],
            "mean_distance": self.access_metrics()["mean_distance"],
            "free_pages": sum(z["free_pages"] for z in zones.values()),
            "pageblocks_unmovable_pages": m["pageblocks_unmovable_pages"],
            "huge_2m_success_rate": h2["successes"] / h2["attempts"] if h2["attempts"] else None,
            "huge_1g_success_rate": h1["successes"] / h1["attempts"] if h1["attempts"] else None,
            "fragmentation_score": {n: z["fragmentation_score"] for n, z in zones.items()},
            "compaction_pages_migrated": m["compaction"]["pages_migrated"],
            "reclaim_scanned": m["reclaim"]["scanned"],
            "normal_pages": {
                n: z["managed_pages"] for n, z in zones.items() if n.endswith("normal")
            },
            "zone_resizes": m["zone_resizes"],
            "pageblocks_moved": m["pageblocks_moved"],
            "kernel_pages": self.mm.kernel.live_pages(),
            "tlb_misses": m["tlb"]["misses"],
            "processes": m["processes"],
        }

    def run(self, progress: Progress | None = None) -> dict[str, Any]:
        sc = self.sc
        t0 = time.perf_counter()
        for t in range(sc.duration):
            self.step(t)
            if t % sc.sample_every == 0 or t == sc.duration - 1:
                self.series.append(self.sample(t))
            if progress is not None:
                progress(t + 1, sc.duration)
        wall = time.perf_counter() - t0
        metrics = self.mm.metrics()
        metrics["access"] = self.access_metrics()
        metrics["workload"] = self.ledger.as_dict()
        metrics["gib_ranges_clean"] = clean_gib_ranges(self.mm)
        return {
            "scenario": sc.name,
            "file": sc.file,
            "seed": sc.seed,
            "duration": sc.duration,
            "wall_seconds": round(wall, 3),
            "machine": asdict(sc.machine),
            **({"seeded": asdict(self.seeded)} if self.seeded is not None else {}),
            "attach": [a.as_dict() for a in sc.attach] if self.attached else [],
            "engines": {a.hook: a.engine_name for a in self.attached},
            "metrics": metrics,
            "series": self.series,
        }


def clean_gib_ranges(mm: MM) -> dict[str, int]:
    """1 GiB-aligned ranges of movable-capable memory with no unmovable page
    (where a 1 GiB page could still be made by compaction), and all of them."""
    unmov = unmovable_pageblocks(mm)
    per = 1 << (ORDER_1G - PAGEBLOCK_ORDER)
    n = len(unmov) // per
    clean = int((~unmov[: n * per].reshape(n, per).any(axis=1)).sum()) if n else 0
    return {"clean": clean, "total": n}


def as_scenario(scenario: str | Path | dict[str, Any] | Scenario | None) -> Scenario:
    """A parsed scenario from a path, a TOML dict, a Scenario or None (the default)."""
    if scenario is None:
        return load_scenario(default_scenario_path())
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return parse_scenario(scenario)
    return load_scenario(scenario)


def run_scenario(
    scenario: str | Path | dict[str, Any] | Scenario | None = None,
    check: bool = False,
    progress: Progress | None = None,
    engines: Mapping[str, Engine] | None = None,
    attach: bool = True,
    engine: str | None = None,
) -> dict[str, Any]:
    """Run a scenario (a path, an already-parsed TOML dict, a Scenario, or
    None for the built-in default) and return its results dict.  ``check``
    verifies every invariant after every tick; the scenario's programs are
    attached unless ``attach`` is false (``engine`` overrides their engine);
    ``engines`` attaches engines to hooks by name.
    """
    return Runner(as_scenario(scenario), check, engines, attach, engine).run(progress)


def baseline_of(sc: Scenario) -> Scenario:
    """The built-in-policy side of a comparison: ``[baseline]`` or the same scenario."""
    return sc.baseline if sc.baseline is not None else sc


def compare_scenario(
    scenario: str | Path | dict[str, Any] | Scenario | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    engine: str | None = None,
    split: bool = False,
    combined: bool = True,
) -> dict[str, Any]:
    """Run the same workload (same seed, so the same offered work) under the
    built-in policies and under the scenario's programs; return every side.

    ``split`` gives each ``[[attach]]`` entry a side of its own (one program
    per column, named by its file), plus all of them together when
    ``combined``.  ``sides`` maps
    each side's name to its results (``built-in`` first); ``baseline`` and
    ``programs`` (all programs together, or the only program) stay for
    two-sided use; ``workload_mismatches`` lists any kind of request whose
    offered count differs between sides (empty unless the workload is not
    policy-independent)."""
    sc = as_scenario(scenario)
    runs: list[tuple[str, Scenario, bool]] = [("built-in", baseline_of(sc), False)]
    if split and len(sc.attach) > 1:
        names = [Path(a.program).name for a in sc.attach]
        runs += [(n if names.count(n) == 1 else f"{a.hook}: {n}", replace(sc, attach=(a,)), True)
                 for n, a in zip(names, sc.attach, strict=True)]
        if combined:
            runs.append(("programs", sc, True))
    else:
        runs.append(("programs", sc, True))
    sides: dict[str, dict[str, Any]] = {}
    for name, side_sc, attach in runs:
        prog = None if progress is None else (lambda t, n, name=name: progress(name, t, n))
        sides[name] = Runner(side_sc, attach=attach, engine=engine if attach else None).run(prog)
    last = sides.get("programs") or sides[runs[-1][0]]
    return {"scenario": sc.name, "file": sc.file, "seed": sc.seed,
            "baseline": sides["built-in"], "programs": last, "sides": sides,
            "workload_mismatches": mismatches(
                {n: r["metrics"]["workload"] for n, r in sides.items()})}
