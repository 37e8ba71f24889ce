"""``bpfvm mm sweep``: a parameter sweep over a scenario, locally or on a Dask cluster.

``bpfvm mm sweep SWEEP.toml [--jobs N | --cluster ADDR] [--out FILE]
[--resume] [--plot FILE.png]`` runs one scenario per seed × grid point ×
variant (:mod:`mmcore.studies.sweep` has the file format and does the work):
in this process with ``--jobs 1``, on ``N`` local worker processes (a Dask
``LocalCluster``; the default is one per core), or on a running Dask
scheduler with ``--cluster tcp://HOST:PORT``.  Rows go to ``--out``
(``.parquet`` or ``.csv``; rewritten as runs finish, so an interrupted sweep
keeps what it did), or to a table on stdout.  ``--resume`` skips the runs
already in ``--out`` with status ok.  ``--plot`` draws each metric against a
grid axis (:mod:`bpfvm.cli.sweep_plot`).  Exit status: 0 if every run
succeeded, 1 if some failed (they are rows with their message), 2 for bad
input.  This module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfvm.cli.common import console, progress
from bpfvm.errors import BpfvmError

if TYPE_CHECKING:
    from rich.table import Table

CHECKPOINT_SECONDS = 10.0  # rewrite --out at most this often while runs finish
# metrics of the table printed without --out (those that vary, at most TABLE_METRICS)
HEADLINE = {"access.mean_distance": "distance", "huge_2m.success_rate": "2M ok",
            "huge_1g.success_rate": "1G ok", "pageblocks_unmovable_pages": "unmov. pb",
            "compaction.pages_migrated": "migrated", "reclaim.scanned": "scanned",
            "oom": "oom"}
TABLE_METRICS = 4


def register(mm_subparsers: argparse._SubParsersAction) -> None:
    p = mm_subparsers.add_parser(
        "sweep", help="run a scenario over seeds x a parameter grid x variants (Dask)")
    p.add_argument("sweep", help="sweep file (.toml)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="local worker processes (default: one per core; 1: in this "
                            "process, no Dask)")
    where.add_argument("--cluster", metavar="ADDR",
                       help="address of a running Dask scheduler (tcp://HOST:PORT)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the --cluster scheduler (default 10)")
    p.add_argument("--out", metavar="FILE",
                   help="results, one row per run (.parquet or .csv)")
    p.add_argument("--resume", action="store_true",
                   help="skip the runs already in --out with status ok")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw each metric against a grid axis per variant (matplotlib)")
    p.add_argument("--axis", metavar="PATH",
                   help="the grid axis of the plot's x axis (default: the first with "
                        "several values)")
    p.add_argument("--metrics", metavar="A,B",
                   help="metrics to plot (default: the headline metrics that vary)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmcore.studies import sweep as sw

    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise BpfvmError("--jobs must be at least 1")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise BpfvmError(f"--timeout: expected a finite number of seconds above 0, "
                         f"not {args.timeout}")
    for flag, value in (("--axis", args.axis), ("--metrics", args.metrics)):
        if value is not None and not args.plot:
            raise BpfvmError(f"{flag} applies to --plot only (it chooses what the plot draws)")
    if args.resume and not args.out:
        raise BpfvmError("--resume needs --out (the results to resume)")
    if args.out:
        sw.check_format(args.out)
    metrics = [m for m in (args.metrics or "").split(",") if m]
    sweep = sw.load_sweep(args.sweep)
    if args.plot:
        from bpfvm.cli.sweep_plot import check_plot

        check_plot(sweep, args.axis, args.plot)
    sw.need("pandas")
    old = None
    if args.resume and Path(args.out).exists():
        old = sw.read_rows(args.out, sweep)
    skip = sw.done_keys(old, sweep) if old is not None else set()
    tasks = sw.plan(sweep, skip)
    err = console(args, stderr=True)
    how = sw.Execution(jobs=jobs, cluster=args.cluster, connect_timeout=args.timeout)
    rows: list[dict[str, Any]] = []
    failed = 0
    last_write = time.monotonic()

    def checkpoint() -> None:
        if args.out:
            sw.write_rows(sw.merge(old, rows, sweep), args.out)

    bar = progress(err, "runs")
    where = args.cluster or ("in-process" if jobs == 1 else f"{jobs} local workers")
    t0 = time.monotonic()
    with bar:
        bar_task = bar.add_task(f"sweep ({where})", total=len(tasks))

        def on_row(task: Any, row: dict[str, Any]) -> None:
            nonlocal failed, last_write
            rows.append(row)
            if row["status"] != "ok":
                failed += 1
                bar.update(bar_task, description=f"sweep ({where}), {failed} failed")
            bar.advance(bar_task)
            if args.out and time.monotonic() - last_write >= CHECKPOINT_SECONDS:
                checkpoint()
                last_write = time.monotonic()

        try:
            sw.execute(tasks, how, on_row)
        finally:  # interrupted or not, what finished is kept
            if rows:
                checkpoint()
    elapsed = time.monotonic() - t0
    df = sw.merge(old, rows, sweep)
    out = console(args)
    if not args.out:
        out.print(_table(df, sweep))
    skipped = sweep.runs - len(tasks)
    out.print(f"{len(rows)} runs in {elapsed:.1f} s ({where}"
              f"{f', {len(how.workers)} workers' if args.cluster else ''})"
              f"{f', {skipped} already done' if skipped else ''}"
              f"{f', [red]{failed} failed[/]' if failed else ''}"
              f"{f' -> {args.out}' if args.out else ''}")
    for row in rows:
        if row["status"] != "ok":
            out.print(f"  [red]failed[/] {_who(row, sweep)}: {row['message']}")
            break
    if args.plot:
        from bpfvm.cli.sweep_plot import plot_sweep

        drawn = plot_sweep(df, sweep, args.plot, axis=args.axis, metrics=metrics)
        out.print(f"plot: {args.plot} ({', '.join(drawn)})")
    bad = int((df["status"] != "ok").sum()) if len(df) else 0
    return 1 if bad else 0


def _who(row: dict[str, Any], sweep: Any) -> str:
    parts = [f"{a.path}={row[a.path]}" for a in sweep.axes]
    return " ".join([*parts, f"seed={row['seed']}", f"variant={row['variant']}"])


def _table(df: Any, sweep: Any) -> Table:
    from rich.table import Table

    t = Table(title=f"sweep {Path(sweep.file).name}: {len(df)} runs "
              "(every metric: --out)")
    cols = [a.path for a in sweep.axes] + ["seed", "variant", "status"]
    present = [m for m in HEADLINE if m in df.columns and df[m].notna().any()]
    metrics = ([m for m in present if df[m].nunique() > 1] or present)[:TABLE_METRICS]
    for c in cols:
        t.add_column(c.rpartition(".")[2])
    for m in metrics:
        t.add_column(HEADLINE[m], justify="right")
    t.add_column("s", justify="right")
    for rec in df.to_dict("records"):
        cells = [str(rec[c]) for c in cols]
        if rec["status"] != "ok":
            cells[-1] = f"failed: {str(rec['message'])[:60]}"
        cells += [_fmt(rec.get(m)) for m in [*metrics, "wall_seconds"]]
        t.add_row(*cells)
    return t


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
