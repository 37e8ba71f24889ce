"""``bpfvm conformance``: run BPF conformance vectors (``.data`` files).

Vectors are not verified (an ISA test may loop or fault on purpose), so
every engine runs them with its instruction budget and bounds checks: the
JIT always in its checked mode.
"""

from __future__ import annotations

import argparse

from bpfvm.cli.common import TextConsole, add_json_flag, print_json
from bpfvm.errors import BpfvmError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("conformance", help="run BPF conformance vectors on an engine")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".data files or directories")
    p.add_argument("--engine", choices=("interp", "jit"), default="interp")
    p.add_argument("--checked", action="store_true",
                   help="accepted for compatibility: the JIT always runs vectors checked")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing vectors too")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bpfvm.conformance import find_vectors, load_vector, run_vector
    from bpfvm.load import make_engine

    if args.checked and args.engine != "jit":
        raise BpfvmError("--checked applies to --engine jit only")

    def factory(program, helpers):
        return make_engine(program, args.engine, helpers, checked=True)

    paths = find_vectors(args.paths)
    if not paths:
        raise BpfvmError(f"{', '.join(args.paths)}: no conformance vectors (.data files)")
    outcomes = [run_vector(load_vector(p), factory) for p in paths]
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "skip")}
    if args.json:
        print_json({"engine": args.engine, "passed": counts["pass"], "failed": counts["fail"],
                    "skipped": counts["skip"],
                    "outcomes": [{"name": o.name, "status": o.status, "message": o.message,
                                  "expected": o.expected, "actual": o.actual}
                                 for o in outcomes]})
        return 1 if counts["fail"] else 0
    out = TextConsole(args)
    for o in outcomes:
        if o.status == "fail":
            out.print(f"[red]FAIL[/] {o.name}: {o.message}", markup=True)
        elif o.status == "skip":
            out.print(f"[yellow]SKIP[/] {o.name}: {o.message}")
        elif args.verbose:
            out.print(f"[green]PASS[/] {o.name}")
    line = f"{counts['pass']} passed, {counts['fail']} failed"
    if counts["skip"]:
        line += f", {counts['skip']} skipped"
    print(line)
    return 1 if counts["fail"] else 0
