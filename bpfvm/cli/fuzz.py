"""``bpfvm fuzz``: hunt for verifier bugs; exit 1 when something was found.

Runs :func:`bpfvm.fuzz.campaign.campaign` (or, with ``--cluster ADDR``,
:func:`bpfvm.fuzz.cluster.campaign_on_cluster` on a Dask scheduler's
workers) with live statistics (a rich table on a terminal, a line every few
seconds otherwise), then prints a summary and the reproducers it saved.
``--json`` prints the summary as JSON instead.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bpfvm.cli.common import add_json_flag, console, print_json
from bpfvm.errors import BpfvmError

if TYPE_CHECKING:
    from rich.table import Table

DEFAULT_OUT = "fuzz-findings"


def default_corpus() -> list[str]:
    """``programs/`` and the test corpora of this checkout, where present (not the
    fuzzer's own findings: mutating them would find the same bugs again)."""
    root = Path(__file__).resolve().parents[2]
    data = root / "tests" / "data"
    dirs = [root / "programs"]
    if data.is_dir():
        dirs += sorted(d for d in data.iterdir() if d.is_dir() and d.name != "fuzz_findings")
    return [str(p) for p in dirs if p.is_dir()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fuzz", help="fuzz the verifier: generate, verify, run, compare")
    p.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    p.add_argument("--seed", type=int, default=1, help="campaign seed (default 1)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                       help="parallel workers (default: one per core)")
    where.add_argument("--cluster", metavar="ADDR",
                       help="spread the cases over the workers of a running Dask scheduler "
                            "(tcp://HOST:PORT); findings and statistics come back here")
    p.add_argument("--corpus", action="append", metavar="DIR",
                   help="directory of .s/.data seed programs to mutate (repeatable; "
                   "default: programs/ and tests/data/)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"where reproducers go (default {DEFAULT_OUT}/)")
    p.add_argument("--jit-every", type=int, default=50, metavar="N",
                   help="compare with the JIT on one accepted program in N (0: never)")
    p.add_argument("--runs", type=int, default=3, help="concrete inputs per accepted program")
    p.add_argument("--reduce-seconds", type=float, default=10.0, metavar="S",
                   help="time spent minimizing each finding (default 10)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the --cluster scheduler (default 10)")
    add_json_flag(p)
    p.set_defaults(func=run)


def _table(stats, reports, elapsed: float) -> Table:
    from rich.table import Table

    t = Table(title="bpfvm fuzz", show_header=False)
    rate = stats.cases / elapsed if elapsed else 0.0
    acc = stats.accepted / stats.wellformed if stats.wellformed else 0.0
    t.add_row("elapsed", f"{elapsed:.1f} s")
    t.add_row("programs", f"{stats.cases} ({rate:.0f}/s)")
    t.add_row("accepted", f"{stats.accepted} ({acc:.0%} of {stats.wellformed} well-formed)")
    t.add_row("interpreter runs", str(stats.runs))
    t.add_row("JIT comparisons", str(stats.jit))
    t.add_row("findings", f"[bold red]{len(reports)}[/]" if reports else "0")
    for r in reports[-5:]:
        t.add_row("", f"{r.finding.oracle}: {r.finding.message[:70]}")
    return t


def run(args: argparse.Namespace) -> int:
    from bpfvm.fuzz.campaign import Config, campaign, summary

    for flag, value in (("--seconds", args.seconds), ("--reduce-seconds", args.reduce_seconds)):
        if not math.isfinite(value):
            raise BpfvmError(f"{flag}: expected a finite number of seconds, got {value}")
    if args.seconds <= 0 or args.jobs < 1 or args.runs < 1 or args.jit_every < 0 \
            or args.reduce_seconds < 0:
        raise BpfvmError("--seconds, --jobs and --runs must be positive, --jit-every and "
                         "--reduce-seconds >= 0")
    if args.jobs > MAX_JOBS:
        raise BpfvmError(f"--jobs: {args.jobs} is more than the limit of {MAX_JOBS}")
    _check_out(args.out)
    corpus = args.corpus if args.corpus is not None else default_corpus()
    for d in corpus:
        if not Path(d).exists():
            raise BpfvmError(f"--corpus {d}: no such directory")
    if args.corpus is not None:
        _check_corpus(corpus)
    config = Config(seconds=args.seconds, seed=args.seed, jobs=args.jobs, corpus=corpus,
                    out=args.out, runs=args.runs, jit_every=args.jit_every,
                    reduce_seconds=args.reduce_seconds)
    out = console(args)
    live = not args.json and out.is_terminal
    if args.cluster:
        from bpfvm.fuzz.cluster import campaign_on_cluster

        def go(progress):  # noqa: ANN001, ANN202
            return campaign_on_cluster(config, args.cluster, progress, timeout=args.timeout)
    else:
        def go(progress):  # noqa: ANN001, ANN202
            return campaign(config, progress)
    if live:
        from rich.live import Live

        with Live(_table(*_empty()), console=out, refresh_per_second=4) as view:
            result = go(lambda s, r, e: view.update(_table(s, r, e)))
    else:
        ticker = _Ticker(quiet=args.json)
        result = go(ticker)
    info = summary(result)
    if args.json:
        print_json(info)
    else:
        _print_summary(out, info, result)
    return 1 if result.reports else 0


MAX_JOBS = 256


def _check_out(out: str) -> None:
    """``--out`` must be a directory we can create and write into: tried now
    (a finding an hour later must not be lost), leaving nothing behind."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise BpfvmError(f"--out {out}: not a directory")
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    created: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise BpfvmError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    finally:
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                pass


def _check_corpus(corpus: list[str]) -> None:
    """A corpus given on the command line whose every file is unusable is an
    error (an empty one only means: generate, do not mutate)."""
    from bpfvm.fuzz.mutate import load_corpus

    cases, skipped = load_corpus(corpus)
    if cases:
        return
    where = ", ".join(corpus)
    if not skipped:
        print(f"fuzz: --corpus {where}: no .s, .data or .cases files; generating programs "
              "only", file=sys.stderr)
        return
    raise BpfvmError(f"--corpus {where}: no usable seed program ({len(skipped)} files "
                     f"skipped; the first: {skipped[0]})")


def _empty() -> tuple:
    from bpfvm.fuzz.campaign import Stats

    return Stats(), [], 0.0


class _Ticker:
    """Progress lines on stderr when not on a terminal."""

    def __init__(self, quiet: bool, every: float = 5.0) -> None:
        self.quiet, self.every, self.next = quiet, every, every

    def __call__(self, stats, reports, elapsed: float) -> None:
        if self.quiet or elapsed < self.next:
            return
        self.next = elapsed + self.every
        print(f"fuzz: {elapsed:.0f} s, {stats.cases} programs, {stats.accepted} accepted, "
              f"{len(reports)} findings", file=sys.stderr)


def _print_summary(out, info: dict, result) -> None:
    out.print(f"{info['cases']} programs in {info['seconds']} s "
              f"({info['cases_per_second']}/s), {info['accepted']} accepted "
              f"({info['acceptance_rate']:.0%} of {info['wellformed']} well-formed), "
              f"{info['interpreter_runs']} interpreter runs, {info['jit_checked']} JIT "
              "comparisons")
    if info["corpus_skipped"]:
        out.print(f"{info['corpus_skipped']} corpus files skipped")
    if not result.reports:
        out.print("no findings")
        return
    out.print(f"[bold red]{len(result.reports)} findings[/]")
    for r in result.reports:
        where = r.path or "(not saved)"
        out.print(f"  {where}: {r.finding.oracle}: {r.finding.message}")
