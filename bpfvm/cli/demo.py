"""``bpfvm demo``: the built-in scenario, built-in policies vs policy programs.

Runs the default scenario (``programs/default.toml``) with the same seed,
so the same offered work, once as a Linux-like kernel would (the
scenario's ``[baseline]``: no movable zone, built-in policies) and once
with each of the scenario's verified programs attached on its own
(Contiguitas' resizable unmovable region, lifetime-aware placement), then
prints the runs side by side with the change in each metric, the work
offered and completed, and how the unmovable region and the unmovable
kernel memory evolved over time (:func:`region_timeline`).  Takes about
half a minute.  The work is
:func:`mmcore.scenario.runner.compare_scenario`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bpfvm.cli.common import check_output, console
from bpfvm.cli.mm import progress_bar, write_json

if TYPE_CHECKING:
    from rich.table import Table

INTRO = (
    "Simulated machine: {machine}.\n"
    "Processes fault in 4 KiB, 2 MiB and 1 GiB pages while the kernel churns slab,\n"
    "network buffers and page-table pages.  Phases (ticks): {phases}.\n"
    "The same workload (seed {seed}, the same offered work) runs once per column:\n"
    "  built-in: Linux-like placement, unmovable pages may land anywhere;\n"
    "  then each program on its own: {programs}.\n"
    "Local accesses differ between the runs because pages land elsewhere: when its home\n"
    "node is full or has no free 1 GiB block, a fault takes memory from the other node\n"
    "(zonelist fallback, as in Linux); no program here chooses nodes."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the built-in scenario: Linux-like vs policy programs")
    p.add_argument("--engine", choices=("auto", "interp", "jit"),
                   help="engine for the programs (default: the scenario's choice)")
    p.add_argument("--json", metavar="OUT", help="also write both results as JSON to OUT")
    p.set_defaults(func=run)


def _mib(pages: int) -> str:
    return f"{pages >> 8:,}"


def region_timeline(results: dict[str, Any], every: int = 20) -> Table:
    """Per sample of a run with the ``zone_resize`` program (every ``every``
    ticks, and the last): live unmovable kernel memory (the same workload
    on every side), the unmovable region (normal zones, all nodes), and the
    resizes and pageblocks moved so far."""
    from rich.table import Table

    t = Table(title="with the zone_resize program, over time: the unmovable region")
    for col in ("tick", "kernel MiB", "region MiB", "resizes", "pageblocks moved"):
        t.add_column(col, justify="right")
    series = results["series"]
    for s in series:
        if s["tick"] % every and s is not series[-1]:
            continue
        t.add_row(str(s["tick"]), _mib(s.get("kernel_pages", 0)),
                  _mib(sum(s["normal_pages"].values())), str(s.get("zone_resizes", 0)),
                  str(s.get("pageblocks_moved", 0)))
    return t


def run(args: argparse.Namespace) -> int:
    from bpfvm.cli.tables import (
        compare_header,
        compare_table,
        hook_problems,
        side_label,
        workload_lines,
    )
    from mmcore.scenario.runner import as_scenario, compare_scenario

    if args.json:
        check_output(args.json, "--json")
    sc = as_scenario(None)
    out = console(args)
    nodes = sc.machine.nodes
    machine = ", ".join(f"node {i}: {n.pages >> 18} GiB {n.tier}" for i, n in enumerate(nodes))
    programs = "; ".join(f"{a.program} on {a.hook}" for a in sc.attach)
    phases = "; ".join(f"{ph.name} {ph.start}-{ph.end}" for ph in sc.phases)
    out.print(INTRO.format(machine=machine, seed=sc.seed, programs=programs, phases=phases))
    with progress_bar(console(args, stderr=True), "demo") as update:
        cmp = compare_scenario(sc, update, engine=args.engine, split=True, combined=False)
    sides = cmp["sides"]
    out.print(compare_table(sides, f"{sc.name}: {sc.duration} ticks"))
    resized = [r for r in sides.values()
               if any(a["hook"] == "zone_resize" for a in r["attach"])]
    if resized:
        out.print(region_timeline(resized[0]))
    for line in compare_header(sides):
        out.print(line, markup=False, highlight=False)
    for line in workload_lines(cmp):
        out.print(line)
    for name, r in sides.items():
        for line in hook_problems(r):
            out.print(f"[yellow]note[/] ({side_label(name)}): {line}")
    if args.json:
        write_json(cmp, args.json)
    return 0
