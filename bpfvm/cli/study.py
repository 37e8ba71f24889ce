"""``bpfvm mm study contiguitas``: the fleet study, Linux-like vs the region.

``bpfvm mm study contiguitas [--servers N] [--seed S] [--uptime LO-HI]
[--jobs J | --cluster ADDR] [--json OUT]`` plans ``N`` servers (seed, mix,
uptime; :mod:`mmcore.studies.fleet` does the work), runs each on both sides
with the same offered work (in this process, on ``J`` local Dask workers or
on a Dask scheduler) and prints the fleet table beside the paper's figures.
Exit status: 0 when every server ran, 1 when some failed (rows with their
message), 2 for bad input.  This module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from bpfvm.cli.common import check_output, console, progress
from bpfvm.errors import BpfvmError


def register(mm_subparsers: argparse._SubParsersAction) -> None:
    p = mm_subparsers.add_parser("study", help="a study over a fleet of simulated servers")
    p.add_argument("study", choices=("contiguitas",), help="which study")
    p.add_argument("--servers", type=int, default=8, metavar="N",
                   help="servers in the fleet (default 8)")
    p.add_argument("--seed", type=int, default=1, help="the fleet's seed (default 1)")
    p.add_argument("--uptime", default="300-600", metavar="LO-HI",
                   help="uptime range in ticks (default 300-600)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="local worker processes (default: one per core; 1: in this "
                            "process)")
    where.add_argument("--cluster", metavar="ADDR",
                       help="address of a running Dask scheduler (tcp://HOST:PORT)")
    p.add_argument("--json", metavar="OUT", help="write the rows and the table as JSON "
                   "('-': stdout)")
    p.set_defaults(func=run)


def _uptime(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        return (int(lo), int(hi)) if sep else (int(lo), int(lo))
    except ValueError:
        raise BpfvmError(f"--uptime {text!r}: expected LO-HI in ticks, e.g. 150-300") from None


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:,.2f}"


ROWS = (
    ("servers with no free 2 MiB block", "no_free_2m_share", _pct),
    ("  after full compaction", "no_free_2m_after_compaction_share", _pct),
    ("2 MiB pageblocks free of unmovable pages", "clean_2m_share", _pct),
    ("2 MiB blocks free after full compaction", "free_2m_share_after_compaction", _pct),
    ("1 GiB ranges free of unmovable pages", "clean_1g_share", _pct),
    ("1 GiB blocks free after full compaction (per server)", "free_1g_after_compaction", _num),
    ("THP coverage of anonymous memory", "thp_coverage", _pct),
    ("TLB misses per 1,000 accesses", "tlb_misses_per_1k", _num),
    ("walk references per 1,000 accesses", "walk_refs_per_1k", _num),
)


def fleet_table(summary: dict[str, Any]) -> Any:
    from rich.table import Table

    sides = summary["sides"]
    t = Table(title="Contiguitas fleet study: Linux-like vs the unmovable region")
    t.add_column("metric")
    for v in sides:
        t.add_column(f"{v} ({sides[v]['servers']})", justify="right")
    t.add_column("paper", justify="right")
    paper = summary["paper"]
    for label, key, fmt in ROWS:
        shown = _pct(paper["servers_without_free_2m"]) if key == "no_free_2m_share" else ""
        t.add_row(label, *(fmt(sides[v].get(key)) for v in sides), shown)
    sp = summary["speedup"]
    lo, hi = paper["speedup_range"]
    t.add_row("estimated speedup, median (min-max)",
              *([""] * (len(sides) - 1)),
              f"{_pct(sp['median'])} ({_pct(sp['min'])} to {_pct(sp['max'])})" if sp else "-",
              f"{_pct(lo)} to {_pct(hi)}")
    return t


def run(args: argparse.Namespace) -> int:
    from mmcore.studies import fleet
    from mmcore.studies.sweep import Execution

    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise BpfvmError("--jobs must be at least 1")
    if args.json:
        check_output(args.json, "--json")
    servers = fleet.plan_fleet(args.servers, args.seed, _uptime(args.uptime))
    how = Execution(jobs=jobs, cluster=args.cluster)
    err = console(args, stderr=True)
    bar = progress(err, "runs")
    with bar:
        task = bar.add_task(f"{len(servers)} servers x 2 sides", total=2 * len(servers))
        rows = fleet.run_fleet(servers, how, lambda t, r: bar.advance(task))
    summary = fleet.summarize(rows)
    if args.json:
        from bpfvm.cli.mm import write_json

        write_json({"servers": [vars(s) for s in servers], "rows": rows, "summary": summary},
                   args.json)
    if args.json != "-":
        out = console(args)
        out.print(fleet_table(summary))
        m = summary["walk_model"]
        out.print(f"speedup estimate: {m['base_cycles_per_access']:.0f} cycles of work per "
                  f"access plus {m['cycles_per_walk_ref']:.0f} cycles per walk reference "
                  "(a page-table line in the LLC); paper: Contiguitas, ISCA 2023",
                  markup=False, highlight=False)
        for r in rows:
            if r["status"] != "ok":
                out.print(f"[red]failed[/]: server {r['server']} ({r['variant']}): "
                          f"{r['message']}")
    return 1 if summary["failed"] else 0
