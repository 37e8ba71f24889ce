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
from dataclasses import asdict

from bpfvm.cli.common import check_output, console, write_output

COLUMNS = (
    ("layout", "layout", "left"),
    ("table", "table", "left"),
    ("mapped_mib", "MiB", "right"),
    ("mapped_pages", "pages", "right"),
    ("refs_pwc", "refs PWC", "right"),
    ("refs_nopwc", "refs none", "right"),
    ("pt_mib_per_gib", "PT MiB/GiB", "right"),
    ("region_kib", "contig KiB", "right"),
    ("region_order", "order", "right"),
    ("rebuilds", "rebuilds", "right"),
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
    p.add_argument("--json", metavar="OUT", help="write the rows as JSON to OUT ('-': stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmcore.studies.pagetables import DEFAULT_CONFIG, load_config, run_study

    if args.json:
        check_output(args.json, "--json", [args.config] if args.config else [])
    cfg = load_config(args.config or DEFAULT_CONFIG)
    layouts = tuple(n for n in (args.layouts or "").split(",") if n)
    err = console(args, stderr=True)
    with err.status("page-table study") as status:
        rows = run_study(cfg, getattr(args, "engine", None) or "interp", layouts,
                         progress=lambda lay, t: status.update(f"{lay}: {t}"))
    data = [asdict(r) for r in rows]
    from rich.table import Table

    if args.json:
        text = json.dumps({"walks": cfg.walks, "seed": cfg.seed, "rows": data}, indent=2)
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
        table.add_row(*(str(row[key]) for key, _, _ in COLUMNS))
    out = console(args)
    out.print(table)
    out.print("refs: memory references per page walk with the page-walk cache (PWC) and "
              "without (none); radix: levels read; hashed and learned: region cache lines "
              "pt_lookup loads plus the PTE's line, the PWC being an LRU of as many metadata "
              "lines.  PT MiB/GiB: page-table memory per GiB mapped.  contig KiB / order: the "
              "physically contiguous block the table needs.")
    return 0
