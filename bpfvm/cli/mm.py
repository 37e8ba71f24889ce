"""``bpfvm mm``: run scenarios on the simulated memory manager.

``bpfvm mm run [SCENARIO.toml]`` runs a scenario (the built-in default
without an argument) with its programs attached, showing a progress bar
and then the metrics tables; ``bpfvm mm compare SCENARIO.toml`` runs the
same workload under the built-in policies and under the scenario's
programs and prints them side by side (``--plot`` draws the time series).
Subcommands of other modules (``bpfvm.cli.mm_pagetables``,
``bpfvm.cli.sweep``, ``bpfvm.cli.snapshot``) register here when present.  This module only parses
arguments and prints: the work is in :mod:`mmcore.scenario.runner`.
``bpfvm mm schema`` prints the scenario format (docs/scenario-schema.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bpfvm.cli.common import check_output, console, progress, write_output
from bpfvm.errors import BpfvmError

if TYPE_CHECKING:
    from rich.console import Console

EXTENSIONS = ("bpfvm.cli.mm_pagetables", "bpfvm.cli.sweep", "bpfvm.cli.snapshot",
              "bpfvm.cli.study")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mm", help="run scenarios on the simulated memory manager")
    mm_sub = p.add_subparsers(dest="mm_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _usage(p))

    r = mm_sub.add_parser("run", help="run a scenario (default: the built-in demo scenario)")
    r.add_argument("scenario", nargs="?", help="scenario file (.toml)")
    r.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT ('-': stdout)")
    r.add_argument("--check", action="store_true",
                   help="verify every MM invariant after every tick (slow)")
    _engine_flag(r)
    r.add_argument("--no-attach", action="store_true",
                   help="ignore the scenario's programs (built-in policies only)")
    r.set_defaults(func=run)

    c = mm_sub.add_parser("compare", help="built-in policies vs the scenario's programs")
    c.add_argument("scenario", nargs="?", help="scenario file (.toml; default: the demo)")
    c.add_argument("--plot", metavar="OUT.png", help="draw, over time, the metrics that "
                   "differ between the sides (matplotlib)")
    c.add_argument("--json", metavar="OUT", help="write every side's results as JSON to OUT "
                   "('-': stdout)")
    c.add_argument("--combined", action="store_true",
                   help="besides one column per program, a column with all of them together")
    _engine_flag(c)
    c.set_defaults(func=compare)

    s = mm_sub.add_parser("schema", help="the scenario file format: every key, its type, "
                          "unit and default (Markdown; docs/scenario-schema.md)")
    s.add_argument("--json", action="store_true", help="the keys as JSON")
    s.set_defaults(func=schema)

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(mm_sub)


def _engine_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("auto", "interp", "jit"),
                   help="engine for every attached program (default: each entry's own, "
                        "else auto: the interpreter, then the JIT once a program has run "
                        "often)")


def schema(args: argparse.Namespace) -> int:
    """Print the scenario schema, generated from the parser's own keys."""
    from mmcore.scenario.schema import schema_keys, schema_markdown

    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(k) for k in schema_keys()], indent=1))
    else:
        print(schema_markdown(), end="")
    return 0


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


@contextmanager
def progress_bar(out: Console, label: str) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar fed with (side, tick, ticks); silent when not a terminal."""
    bar = progress(out, "ticks")
    tasks: dict[str, Any] = {}

    def update(side: str, t: int, n: int) -> None:
        if side not in tasks:
            tasks[side] = bar.add_task(f"{label} {side}".strip(), total=n)
        bar.update(tasks[side], completed=t)

    with bar:
        yield update


def write_json(obj: Any, dest: str, inputs: tuple[str | None, ...] = ()) -> None:
    """``obj`` as JSON to ``dest`` (``-``: stdout), written whole or not at all."""
    write_output(dest, json.dumps(obj, indent=2) + "\n", "--json",
                 inputs=[p for p in inputs if p])


def _scenario(path: str | None) -> Any:
    from mmcore.scenario.runner import as_scenario

    return as_scenario(path)


def run(args: argparse.Namespace) -> int:
    from bpfvm.cli.tables import hook_problems, print_results
    from mmcore.errors import InvariantError
    from mmcore.scenario.runner import Runner

    if args.no_attach and args.engine:
        raise BpfvmError("--engine chooses the engine of attached programs; with --no-attach "
                         "nothing is attached")
    if args.json:
        check_output(args.json, "--json", [args.scenario] if args.scenario else [])
    sc = _scenario(args.scenario)
    err = console(args, stderr=True)
    runner = Runner(sc, check=args.check, attach=not args.no_attach, engine=args.engine)
    try:
        with progress_bar(err, sc.name) as update:
            results = runner.run(lambda t, n: update("", t, n))
    except InvariantError as exc:  # a bug of the MM core, found by --check
        failure = BpfvmError(f"{sc.file}: invariant violated at tick {runner.mm.tick}: {exc} "
                             "(a bug in the MM core: please report it with this scenario)")
        failure.exit_code = 1
        raise failure from None
    if args.json:
        write_json(results, args.json, (args.scenario,))
    if args.json != "-":
        out = console(args)
        print_results(results, out)
        for line in hook_problems(results):
            out.print(f"[yellow]note[/]: {line}")
    if args.check:
        # stderr when stdout carries the JSON
        say = err if args.json == "-" else console(args)
        say.print(f"invariants held: every MM invariant checked after each of "
                  f"{sc.duration:,} ticks", markup=False, highlight=False)
    return 0


def compare(args: argparse.Namespace) -> int:
    from bpfvm.cli.tables import (
        compare_header,
        compare_rows,
        compare_table,
        hook_problems,
        side_label,
        workload_lines,
    )
    from mmcore.scenario.runner import compare_scenario

    inputs = [args.scenario] if args.scenario else []
    if args.json:
        check_output(args.json, "--json", inputs)
    if args.plot:
        from bpfvm.cli.plot import plot_format

        check_output(args.plot, "--plot", inputs)
        plot_format(args.plot)
    sc = _scenario(args.scenario)
    if not sc.attach:
        raise BpfvmError(f"{sc.file}: attach: the scenario attaches no program; "
                         "nothing to compare")
    if args.combined and len(sc.attach) < 2:
        raise BpfvmError(f"{sc.file}: attach: --combined needs two or more programs, "
                         f"the scenario attaches {len(sc.attach)}")
    err = console(args, stderr=True)
    with progress_bar(err, sc.name) as update:
        cmp = compare_scenario(sc, update, engine=args.engine, split=True,
                               combined=args.combined)
    sides = cmp["sides"]
    if args.json:
        write_json({**cmp, "rows": compare_rows(sides)}, args.json, (args.scenario,))
    if args.plot:
        from bpfvm.cli.plot import plot_compare

        plot_compare(cmp, args.plot)
    if args.json == "-":
        return 0
    out = console(args)
    names = " vs ".join(side_label(n) for n in sides)
    out.print(compare_table(sides, f"{sc.name} (seed {sc.seed}, {sc.duration} ticks): {names}"))
    for line in compare_header(sides):
        out.print(line, markup=False, highlight=False)
    for line in workload_lines(cmp):
        out.print(line)
    for name, r in sides.items():
        for line in hook_problems(r):
            out.print(f"[yellow]note[/] ({side_label(name)}): {line}")
    if args.plot:
        out.print(f"plot: {args.plot}")
    return 0
