"""What several subcommands share: reading programs and inputs, output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from bpfvm.errors import BpfvmError
from bpfvm.helpers import HelperTable
from bpfvm.hookspec import HookSpec
from bpfvm.load import read_program, read_programs
from bpfvm.program import Program


def console(args: argparse.Namespace | None = None, stderr: bool = False) -> Console:
    """A rich console: colours on a terminal, plain text when piped."""
    no_color = bool(getattr(args, "no_color", False))
    return Console(stderr=stderr, no_color=no_color, highlight=False,
                   soft_wrap=not sys.stdout.isatty())


def helpers() -> HelperTable:
    """The helper table of every program the CLI handles: the standard
    helpers and the MM core's."""
    from mmcore.hooks.helpers import policy_helpers

    return policy_helpers()


def hooks() -> dict[str, HookSpec]:
    """The hook records of every program the CLI handles: the MM core's."""
    from mmcore.hooks.specs import HOOKS

    return HOOKS


def header_text() -> str:
    """``bpfvm.h`` for the CLI's hooks and helpers (what ``bpfvm header`` prints
    and what ``bpfvm cc`` and C programs compile against)."""
    from bpfvm.asm.header import generate

    return generate(hooks(), helpers())


def load_programs(path: str | Path, syntax: str | None = None) -> list[Program]:
    """Every program of a file (see :func:`bpfvm.load.read_programs`)."""
    return read_programs(path, helpers(), syntax, hooks())


def load_program(path: str | Path, syntax: str | None = None,
                 section: str | None = None) -> Program:
    """The program of a file, or of its ``.hook`` section ``section``."""
    return read_program(path, helpers(), syntax, section, hooks())


def add_section_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--section", metavar="HOOK",
                        help="in a file of several programs, the one for this hook")


def parse_hex(text: str, where: str = "--mem") -> bytearray:
    """Bytes from hex text: ``"00 01 ff"``, ``"0001ff"`` or ``0x``-less words."""
    cleaned = "".join(text.split())
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        return bytearray(bytes.fromhex(cleaned))
    except ValueError:
        raise BpfvmError(f"{where}: not hex bytes: {text[:40]!r}") from None


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))
