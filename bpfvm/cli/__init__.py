"""The ``bpfvm`` command line: one subcommand per module of this package.

Each command module exposes ``register(subparsers)`` (adding its parser with
``set_defaults(func=run)``) and ``run(args) -> int``.  :func:`main` turns
every :class:`~bpfvm.errors.BpfvmError` into a one-line message and its exit
code (2 for bad input, 1 for a program's failure); nothing a user can cause
ends in a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bpfvm.errors import BpfvmError

# Subcommand modules, in the order ``bpfvm --help`` lists them.  A module that
# is absent (a component not built yet) is skipped.
COMMANDS = ("demo", "asm", "cc", "disasm", "run", "verify", "conformance", "hooks", "header",
            "mm", "fuzz")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpfvm",
        description="eBPF-like policy programs for a simulated memory manager: "
        "assemble, verify, run, attach.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"bpfvm.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("bpfvm.cli."):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except BpfvmError as exc:
        print(f"bpfvm: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bpfvm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
