"""``bpfvm header``: write ``bpfvm.h``, the C header of the hook and helper records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bpfvm.errors import BpfvmError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("header", help="generate bpfvm.h (context structs, helpers, map macros)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write here (default: stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bpfvm.cli.common import header_text

    text = header_text()
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text)
    except OSError as exc:
        raise BpfvmError(f"{args.output}: {exc.strerror or exc}") from None
    return 0
