"""The Contiguitas fleet study: many simulated servers, Linux-like vs the region.

A fleet is ``n`` servers, each drawn from the fleet seed: its own seed, a
workload mix (``web``: many short-lived THP processes and a high rate of
network buffers; ``cache``: one long-lived large process, many dentries and
inodes; ``batch``: large jobs arriving in waves over a big page cache) and an
uptime in ticks (the simulator's unit of time; not calibrated to wall-clock
days).  Every server runs twice on the same offered work (the workload
comes from seeded streams, :mod:`mmcore.scenario.workload`):

* ``linux``: a Linux-like machine, no movable zone, built-in policies;

Kernel memory comes from slab objects with Pareto lifetimes (a few live
for most of the uptime and pin their slab pages wherever they landed),
network buffers and page-table-like pages; reclaim balances anon and file
as ``get_scan_count`` does; a THP fault that finds no free 2 MiB block wakes
kswapd and kcompactd (THP ``defrag = defer+madvise``, as
``programs/contiguitas.toml``).
* ``contiguitas``: the same memory with the unmovable region (the normal
  zone, 10 % of the node at boot) resized by ``contiguitas_resize.s``.

At the end of a run :func:`server_metrics` reads the machine as the paper
reads a server: whether any free 2 MiB block exists, the share of 2 MiB
pageblocks (and 1 GiB ranges) holding no unmovable page, the same after a
full compaction of every zone (the blocks compaction can actually free),
the THP coverage of anonymous memory, and TLB misses and walk references
per 1,000 accesses of a steady reference window over the populated memory
(:mod:`mmcore.studies.steady_stream`; the run's own references are mostly
first touches).  :func:`summarize` makes the fleet table, with a speedup
estimate from :data:`WALK_MODEL` (assumptions stated there).

Runs go through the sweep machinery (:func:`mmcore.studies.sweep.execute`):
in this process, on local Dask workers or on a Dask cluster.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bpfvm.errors import BpfvmError
from bpfvm.program import Program
from mmcore.constants import NR_ORDERS, ORDER_1G, PAGEBLOCK_ORDER
from mmcore.metrics import unmovable_pageblocks
from mmcore.mm import MM
from mmcore.scenario.attach import verified_programs
from mmcore.scenario.runner import Runner, clean_gib_ranges
from mmcore.scenario.schema import parse_scenario
from mmcore.studies.steady_stream import WINDOW_ACCESSES, steady_window

MIXES = ("web", "cache", "batch")
VARIANTS = ("linux", "contiguitas")
NODE_MEMORY = 2 << 30
REGION_SHARE = 0.10  # the unmovable region at boot, of each node

# The walk model behind the speedup estimate: each memory access costs
# BASE_CYCLES of work (data access included) plus, on a TLB miss, its walk's
# references at REF_CYCLES each (a page-table line found in the LLC, the
# latency model's default).  Walk references per access come from the
# steady window after the uptime (mmcore.studies.steady_stream: references
# with a hot set over the populated memory, no faults), so population does
# not count.  Speedup = time(linux) / time(contiguitas) - 1.
WALK_MODEL = {"base_cycles_per_access": 200.0, "cycles_per_walk_ref": 50.0}

# The paper's figures (Contiguitas, ISCA 2023), for the table's side column.
PAPER = {"servers_without_free_2m": 0.23, "speedup_range": (0.02, 0.18)}


@dataclass(frozen=True)
class Server:
    index: int
    seed: int
    mix: str
    uptime: int


def plan_fleet(n: int, seed: int = 1, uptime: tuple[int, int] = (300, 600)) -> list[Server]:
    """``n`` servers drawn from ``seed``: each its seed, mix and uptime."""
    if n < 1:
        raise BpfvmError(f"a fleet needs at least one server, not {n}")
    lo, hi = uptime
    if not 20 <= lo <= hi:
        raise BpfvmError(f"uptime {lo}-{hi}: want 20 <= low <= high ticks")
    rng = random.Random(f"{seed}/fleet")
    return [Server(i, rng.getrandbits(31), rng.choice(MIXES), rng.randint(lo, hi))
            for i in range(n)]


def _kernel(objects: float, netbuf: float, caches: dict[str, float]) -> dict[str, Any]:
    """Kernel churn: slab objects with long-tailed (Pareto) lifetimes through
    the slab caches, network buffers and page-table-like pages."""
    return {"object_rate": objects, "caches": caches, "object_lifetime": [5, 20000],
            "object_lifetime_alpha": 1.1, "netbuf_rate": netbuf, "pagetable_rate": 1,
            "orders": [0, 2], "lifetime": [5, 30]}


def _phases(mix: str, t: int) -> list[dict[str, Any]]:
    """The phases of a mix over ``t`` ticks.  Processes populate their
    memory 2 MiB at a time (as a program touching all of it would) and every
    mix reads files of about the machine's size, so the page cache fills
    what the processes leave, as on a server that has been up a while."""
    if mix == "web":
        return [{"name": "web", "start": 0, "end": t,
                 "kernel": _kernel(1500, 48, {"kmalloc-256": 2, "kmalloc-1k": 2,
                                              "kmalloc-4k": 1, "dentry": 2,
                                              "inode_cache": 1}),
                 "file": {"files": 2, "file_size": "1GiB", "reads_per_tick": 4096},
                 "processes": {"arrival_rate": 0.5, "max_processes": 6, "lifetime": [10, 40],
                               "size": ["64MiB", "192MiB"], "huge": {"thp": 1},
                               "faults_per_tick": 16, "touch_huge": True,
                               "accesses_per_tick": 32}}]
    if mix == "cache":
        return [{"name": "cache", "start": 0, "end": t,
                 "kernel": _kernel(3000, 16, {"dentry": 4, "inode_cache": 2,
                                              "radix_tree_node": 2, "kmalloc-64": 1}),
                 "file": {"files": 1, "file_size": "1536MiB", "reads_per_tick": 2048},
                 "processes": {"arrival_rate": 1.0, "max_processes": 1, "lifetime": [t, t],
                               "size": ["1GiB", "1GiB"], "huge": {"thp": 1},
                               "faults_per_tick": 8, "touch_huge": True,
                               "accesses_per_tick": 64}}]
    return [{"name": "batch", "start": 0, "end": t,
             "kernel": _kernel(800, 8, {"dentry": 2, "inode_cache": 1,
                                          "radix_tree_node": 2, "kmalloc-512": 1}),
             "file": {"files": 2, "file_size": "1GiB", "reads_per_tick": 4096},
             "processes": {"arrival_rate": 0.05, "max_processes": 2, "lifetime": [60, 120],
                           "size": ["768MiB", "1GiB"], "huge": {"thp": 1},
                           "faults_per_tick": 16, "touch_huge": True,
                           "accesses_per_tick": 32}}]


def server_scenario(s: Server, variant: str) -> dict[str, Any]:
    """The scenario (a TOML dict) of server ``s`` on one side of the study."""
    if variant not in VARIANTS:
        raise BpfvmError(f"unknown variant '{variant}' (expected {', '.join(VARIANTS)})")
    node: dict[str, Any] = {"memory": NODE_MEMORY, "tier": "dram"}
    data: dict[str, Any] = {
        "name": f"server{s.index}-{s.mix}", "seed": s.seed, "duration": s.uptime,
        "sample_every": s.uptime, "phases": _phases(s.mix, s.uptime),
        "mm": {"compaction_proactiveness": 20, "kcompactd_interval": 25,
               "scan_balance": "cost", "thp": {"defrag": "defer+madvise"}},
    }
    if variant == "contiguitas":
        movable = int(NODE_MEMORY * (1 - REGION_SHARE)) & -(2 << 20)
        node["movable"] = movable
        data["mm"]["evacuate_interval"] = 50
        data["attach"] = [{"hook": "zone_resize", "program": "contiguitas_resize.s"}]
    data["machine"] = {"nodes": [node]}
    return data


@dataclass(frozen=True)
class FleetTask:
    """One server on one side, ready for a worker (programs verified here)."""

    labels: tuple[tuple[str, Any], ...]
    seed: int
    variant: str
    scenario: dict[str, Any]
    programs: tuple[Program, ...] | None
    file: str = "<fleet>"


def plan_tasks(servers: list[Server]) -> list[FleetTask]:
    """Both sides of every server; the region program is verified once."""
    tasks, shipped = [], None
    for s in servers:
        for variant in VARIANTS:
            data = server_scenario(s, variant)
            progs = None
            if variant == "contiguitas":
                if shipped is None:
                    shipped = verified_programs(parse_scenario(data, "<fleet>"))
                progs = shipped
            labels = (("server", s.index), ("mix", s.mix), ("uptime", s.uptime))
            tasks.append(FleetTask(labels, s.seed, variant, data, progs))
    return tasks


def _free_blocks(mm: MM, order: int) -> int:
    """Free blocks of ``1 << order`` pages, counting larger free blocks as several."""
    return sum(z.nr_free[o] << (o - order) for z in mm.phys.zones
               for o in range(order, NR_ORDERS))


def server_metrics(mm: MM, window: int = WINDOW_ACCESSES, seed: int = 1) -> dict[str, Any]:
    """The fleet figures of one machine: a steady reference window of
    ``window`` accesses over the populated memory first
    (:func:`mmcore.studies.steady_stream.steady_window`; it neither faults
    nor allocates), then the layout; compacts every zone fully (last)."""
    procs = [p for p in mm.procs.values() if p.alive]
    rss = sum(p.rss_pages for p in procs)
    huge = sum((p.present[1] << 9) + (p.present[2] << 18) for p in procs)
    steady = steady_window(mm, window, seed)
    unmov = unmovable_pageblocks(mm)
    gib = clean_gib_ranges(mm)
    out = {
        "free_2m_blocks": _free_blocks(mm, PAGEBLOCK_ORDER),
        "free_1g_blocks": _free_blocks(mm, ORDER_1G),
        "clean_2m_share": round(float((~unmov).mean()), 6),
        "clean_1g_share": round(gib["clean"] / gib["total"], 6) if gib["total"] else 0.0,
        "thp_coverage": round(huge / rss, 6) if rss else None,
        "tlb_misses_per_1k": steady["tlb_misses_per_1k"],
        "walk_refs_per_1k": steady["walk_refs_per_1k"],
        "window_accesses": steady["accesses"],
        "pageblocks": len(unmov),
    }
    for node in mm.phys.nodes:
        for z in node.zones:
            if z.managed:
                mm.compaction.compact_zone(z, -1)
    out["free_2m_after_compaction"] = _free_blocks(mm, PAGEBLOCK_ORDER)
    out["free_1g_after_compaction"] = _free_blocks(mm, ORDER_1G)
    out["free_2m_share_after_compaction"] = round(
        out["free_2m_after_compaction"] / out["pageblocks"], 6)
    return out


def run_server(task: FleetTask) -> dict[str, Any]:
    """Run one server on one side (on a worker); a failure is a row too."""
    row: dict[str, Any] = dict(task.labels)
    row.update(seed=task.seed, variant=task.variant, status="ok", message="")
    t0 = time.perf_counter()
    try:
        sc = parse_scenario(task.scenario, task.file)
        runner = Runner(sc, attach=task.programs is not None, programs=task.programs)
        results = runner.run()
        row.update(server_metrics(runner.mm, seed=task.seed))
        row["oom_kills"] = results["metrics"]["oom_kills"]
        work = results["metrics"]["workload"]
        row["offered_bytes"] = work["offered"]["touched_bytes"]
        row["completed_bytes"] = work["completed"]["touched_bytes"]
    except Exception as exc:  # noqa: BLE001 - a failed server is a row, not the study's end
        row.update(status="failed", message=f"{type(exc).__name__}: {exc}")
    row["wall_seconds"] = round(time.perf_counter() - t0, 3)
    return row


def _time_per_access(row: dict[str, Any]) -> float:
    m = WALK_MODEL
    return m["base_cycles_per_access"] + (row["walk_refs_per_1k"] or 0.0) / 1000 * \
        m["cycles_per_walk_ref"]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The fleet table: per side, shares over servers and means of per-server
    figures; per server pair, the speedup estimate of :data:`WALK_MODEL`."""
    ok = [r for r in rows if r.get("status") == "ok"]
    sides: dict[str, dict[str, Any]] = {}
    for v in VARIANTS:
        rs = [r for r in ok if r["variant"] == v]
        if not rs:
            continue

        def mean(key: str, rs: list[dict[str, Any]] = rs) -> float | None:
            vals = [r[key] for r in rs if r.get(key) is not None]
            return round(statistics.fmean(vals), 4) if vals else None

        sides[v] = {
            "servers": len(rs),
            "no_free_2m_share": round(sum(r["free_2m_blocks"] == 0 for r in rs) / len(rs), 4),
            "no_free_2m_after_compaction_share": round(
                sum(r["free_2m_after_compaction"] == 0 for r in rs) / len(rs), 4),
            "clean_2m_share": mean("clean_2m_share"),
            "free_2m_share_after_compaction": mean("free_2m_share_after_compaction"),
            "clean_1g_share": mean("clean_1g_share"),
            "free_1g_after_compaction": mean("free_1g_after_compaction"),
            "thp_coverage": mean("thp_coverage"),
            "tlb_misses_per_1k": mean("tlb_misses_per_1k"),
            "walk_refs_per_1k": mean("walk_refs_per_1k"),
        }
    pairs = {}
    for r in ok:
        pairs.setdefault(r["server"], {})[r["variant"]] = r
    speedups = sorted(_time_per_access(p["linux"]) / _time_per_access(p["contiguitas"]) - 1
                      for p in pairs.values() if set(p) == set(VARIANTS))
    return {
        "sides": sides,
        "speedup": ({"median": round(statistics.median(speedups), 4),
                     "min": round(speedups[0], 4), "max": round(speedups[-1], 4),
                     "servers": len(speedups)} if speedups else None),
        "failed": len(rows) - len(ok),
        "walk_model": dict(WALK_MODEL),
        "paper": {"servers_without_free_2m": PAPER["servers_without_free_2m"],
                  "speedup_range": list(PAPER["speedup_range"])},
    }


def run_fleet(servers: list[Server], how: Any = None,
              on_row: Any = None) -> list[dict[str, Any]]:
    """Run both sides of every server (``how``: a
    :class:`mmcore.studies.sweep.Execution`; default: in this process) and
    return the rows in server order; ``on_row(task, row)`` sees each as it ends."""
    from mmcore.studies.sweep import Execution, execute

    rows: list[dict[str, Any]] = []

    def got(task: FleetTask, row: dict[str, Any]) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(task, row)

    execute(plan_tasks(servers), how or Execution(), got, run=run_server)
    order = {v: i for i, v in enumerate(VARIANTS)}
    return sorted(rows, key=lambda r: (r["server"], order.get(r["variant"], 9)))
