"""``bpfvm mm pagetables``: the page-table study (radix vs hashed vs learned).

``bpfvm mm pagetables [CONFIG.toml] [--layouts dense,sparse] [--engine
interp|jit] [--json OUT]`` runs :mod:`mmcore.studies.pagetables` (default configuration
``programs/pt_study.toml``) and prints one table row per (layout, page
table).  :func:`register` adds the subcommand to ``bpfvm mm``; :func:`run`
does the work.  This module parses and prints only.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

from bpfvm.cli.common import check_output, console, write_output
from bpfvm.errors import BpfvmError

COLUMNS = (
    ("layout", "layout", "left"),
    ("table", "table", "left"),
    ("mapped_mib", "MiB", "right"),
    ("mapped_pages", "pages", "right"),
    ("refs_pwc", "refs PWC", "right"),
    ("refs_nopwc", "refs none", "right"),
    ("walks", "walks", "right"),
    ("refs_walk", "refs/walk", "right"),
    ("cyc_mean", "cyc mean", "right"),
    ("cyc_p99", "cyc p99", "right"),
    ("xlat_pct", "xlat %", "right"),
    ("pt_mib_per_gib", "PT MiB/GiB", "right"),
    ("region_kib", "contig KiB", "right"),
    ("regions", "regions", "right"),
    ("rebuilds", "rebuilds", "right"),
    ("retrains_per_mfault", "retrains/Mfault", "right"),
    ("rebuild_cyc_per_fault", "rebuild cyc/fault", "right"),
)


def register(mm_subparsers: argparse._SubParsersAction) -> None:
    p = mm_subparsers.add_parser(
        "pagetables", help="page-table study: radix vs hashed vs learned page tables")
    p.add_argument("config", nargs="?", help="study configuration (.toml; default: "
                   "programs/pt_study.toml)")
    p.add_argument("--layouts", default="", metavar="A,B",
                   help="only these layouts (comma-separated names)")
    p.add_argument("--engine", choices=("interp", "jit"), default="interp",
                   help="engine running map/unmap/lookup (walks are counted on the "
                        "interpreter either way)")
    p.add_argument("--stream", choices=("zipf", "scan", "chase", "uniform"),
                   help="access stream of the workload (default: the configuration's)")
    p.add_argument("--tables", default="", metavar="A,B",
                   help="only these page tables (comma-separated names)")
    p.add_argument("--maps", action="append", default=[], metavar="FILE",
                   help="also replay the address space recorded in FILE (a /proc/PID/maps "
                        "copy or a 'bpfvm mm snapshot-maps' file; repeatable)")
    p.add_argument("--json", metavar="OUT", help="write the rows as JSON to OUT ('-': stdout)")
    p.set_defaults(func=run)
    s = mm_subparsers.add_parser(
        "snapshot-maps", help="record /proc/PID/maps (with resident sizes) of live processes")
    s.add_argument("pids", nargs="*", type=int, metavar="PID",
                   help="processes to record (default: this one)")
    s.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE (one PID) or into directory FILE as COMM-PID.maps "
                        "(several); default: stdout")
    s.set_defaults(func=snapshot_maps)


def snapshot_maps(args: argparse.Namespace) -> int:
    import os

    from mmcore.studies.procmaps import snapshot

    pids = args.pids or [os.getpid()]
    texts = {pid: snapshot(pid) for pid in pids}
    if not args.output:
        print("\n".join(texts.values()), end="")
        return 0
    if len(pids) == 1:
        write_output(args.output, texts[pids[0]], "-o")
        return 0
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for pid, text in texts.items():
            comm = Path(f"/proc/{pid}/comm").read_text().strip() if Path(
                f"/proc/{pid}/comm").exists() else "proc"
            (out / f"{comm}-{pid}.maps").write_text(text)
    except OSError as exc:
        raise BpfvmError(f"-o {args.output}: cannot write: {exc.strerror or exc}") from None
    return 0


def run(args: argparse.Namespace) -> int:
    from mmcore.studies.pagetables import (
        DEFAULT_CONFIG,
        TABLES,
        load_config,
        maps_layout,
        run_study,
    )

    if args.json:
        check_output(args.json, "--json", [args.config] if args.config else [])
    cfg = load_config(args.config or DEFAULT_CONFIG)
    if getattr(args, "stream", None):
        cfg = replace(cfg, stream=args.stream)
    if getattr(args, "maps", None):
        cfg = replace(cfg, layouts=cfg.layouts + tuple(maps_layout(f) for f in args.maps))
    tables = tuple(t for t in (getattr(args, "tables", "") or "").split(",") if t)
    if tables:
        unknown = [t for t in tables if t not in TABLES]
        if unknown:
            raise BpfvmError(f"--tables: no table {unknown[0]!r} (known: {', '.join(TABLES)})")
        cfg = replace(cfg, tables=tables)
    layouts = tuple(n for n in (args.layouts or "").split(",") if n)
    err = console(args, stderr=True)
    with err.status("page-table study") as status:
        rows = run_study(cfg, getattr(args, "engine", None) or "interp", layouts,
                         progress=lambda lay, t: status.update(f"{lay}: {t}"))
    data = [asdict(r) for r in rows]
    from rich.table import Table

    if args.json:
        text = json.dumps({"walks": cfg.walks, "seed": cfg.seed, "stream": cfg.stream,
                           "accesses": cfg.accesses, "rows": data}, indent=2)
        write_output(args.json, text + "\n", "--json")
        if args.json == "-":
            return 0
    table = Table(title=f"page tables: {cfg.walks} walks per measurement, seed {cfg.seed}")
    for _, head, justify in COLUMNS:
        table.add_column(head, justify=justify)  # type: ignore[arg-type]
    last = None
    for row in data:
        if last is not None and row["layout"] != last:
            table.add_section()
        last = row["layout"]
        row = {**row, "xlat_pct": round(100 * row["xlat_share"], 1)}
        table.add_row(*(str(row[key]) for key, _, _ in COLUMNS))
    out = console(args)
    out.print(table)
    out.print("refs PWC / none: memory references per walk at uniformly random touched pages, "
              "with the walk caches and without (radix: levels read; program tables: region "
              "lines pt_lookup loads plus the PTE's line; hashed and learned are the naive "
              "programs, their walk cache an LRU of as many metadata lines as the PWC; ecpt: "
              "clustered entries (8 PTEs of consecutive pages per line, one tag), cuckoo "
              "walk caches prune ways, table registers are free; ecpt_unclustered: one tag "
              "per PTE, 4 per line; lvm: the LVM-like learned "
              "table, root model and node count in registers, its other index lines (node and "
              "leaf models, bounds) in a model cache of "
              "32 entries).  walks .. xlat %: "
              f"a {cfg.stream} stream of {cfg.accesses} accesses through a TLB and the cache "
              "hierarchy (L1/L2/LLC/DRAM "
              + "/".join(str(lvl.latency) for lvl in cfg.cache.levels) + f"/{cfg.cache.dram} "
              "cycles): TLB-miss walks, references per walk, cycles per walk (parallel "
              "references overlap, dependent ones add), share of memory time spent walking.  "
              "PT MiB/GiB: page-table memory per GiB mapped.  contig KiB: the physically "
              "contiguous block the table needs; regions: how many blocks x KiB.  rebuilds: "
              "whole-table rebuilds, resizes (ecpt) or builds (lvm); retrains/Mfault: lvm leaf "
              "retrains per million faults.  rebuild cyc/fault: cycles of the lines "
              "rebuilds and resizes moved, per fault (= Mcycles per million faults).")
    return 0
