"""What several subcommands share: reading programs and inputs, output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from bpfvm.errors import BpfvmError
from bpfvm.program import Program


def console(args: argparse.Namespace | None = None, stderr: bool = False) -> Console:
    """A rich console: colours on a terminal, plain text when piped."""
    no_color = bool(getattr(args, "no_color", False))
    return Console(stderr=stderr, no_color=no_color, highlight=False,
                   soft_wrap=not sys.stdout.isatty())


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BpfvmError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BpfvmError(f"{path}: is a directory") from None
    except OSError as exc:
        raise BpfvmError(f"{path}: {exc.strerror}") from None


def read_text(path: str | Path) -> str:
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BpfvmError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def load_programs(path: str | Path, syntax: str | None = None) -> list[Program]:
    """Every program of a file: assembly (``.s``, one per ``.hook`` section),
    raw bytecode (``.bin``: plain instruction words) or a JSON object file
    (``.json``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".bin":
        return [Program.load_bytes(read_bytes(path), name=path.stem)]
    if suffix == ".json":
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise BpfvmError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise BpfvmError(f"{path}: expected a JSON object")
        return [Program.from_json(data, str(path))]
    from bpfvm.asm.sections import split_sections

    programs = split_sections(read_text(path), str(path), syntax=syntax)
    if len(programs) == 1:
        programs[0].name = path.stem
    return programs


def load_program(path: str | Path, syntax: str | None = None,
                 section: str | None = None) -> Program:
    """The program of a file, or of its ``.hook`` section ``section``."""
    from bpfvm.asm.sections import pick_section

    return pick_section(load_programs(path, syntax), section, str(path))


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
