"""``bpfvm demo``: the built-in scenario, built-in policies vs policy programs.

Runs the default scenario (``programs/default.toml``) twice with the same
seed: once as a Linux-like kernel would (the scenario's ``[baseline]``:
no movable zone, built-in policies) and once with the scenario's verified
programs attached (Contiguitas' resizable unmovable region and the others),
then prints the two side by side with the change in each metric.  Takes
about half a minute.  The work is :func:`mmcore.runner.compare_scenario`.
"""

from __future__ import annotations

import argparse

from bpfvm.cli.common import console
from bpfvm.cli.mm import progress_bar, write_json

INTRO = (
    "Simulated machine: {machine}.\n"
    "Processes fault in 4 KiB, 2 MiB and 1 GiB pages while the kernel churns slab,\n"
    "network buffers and page-table pages.  The same workload (seed {seed}) runs twice:\n"
    "  built-in: Linux-like placement, unmovable pages may land anywhere;\n"
    "  programs: {programs}."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the built-in scenario: Linux-like vs policy programs")
    p.add_argument("--engine", choices=("interp", "jit"),
                   help="engine for the programs (default: the scenario's choice)")
    p.add_argument("--json", metavar="OUT", help="also write both results as JSON to OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmcore.report import compare_header, compare_table, hook_problems
    from mmcore.runner import as_scenario, compare_scenario

    sc = as_scenario(None)
    out = console(args)
    nodes = sc.machine.nodes
    machine = ", ".join(f"node {i}: {n.pages >> 18} GiB {n.tier}" for i, n in enumerate(nodes))
    programs = "; ".join(f"{a.program} on {a.hook}" for a in sc.attach)
    out.print(INTRO.format(machine=machine, seed=sc.seed, programs=programs))
    with progress_bar(console(args, stderr=True), "demo") as update:
        cmp = compare_scenario(sc, update, engine=args.engine)
    base, pol = cmp["baseline"], cmp["programs"]
    out.print(compare_table(base, pol, f"{sc.name}: {sc.duration} ticks"))
    for line in compare_header(base, pol):
        out.print(line)
    for line in hook_problems(pol):
        out.print(f"[yellow]note[/]: {line}")
    if args.json:
        write_json(cmp, args.json)
    return 0
