"""``bpfvm header``: write ``bpfvm.h``, the C header of the hook and helper records."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("header", help="generate bpfvm.h (context structs, helpers, map macros)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write here (default: stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bpfvm.cli.common import header_text, write_output

    write_output(args.output or "-", header_text(), "-o")
    return 0
