"""``bpfvm asm``: assemble a source file to bytecode or an object file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bpfvm.cli.busy import busy
from bpfvm.cli.common import add_section_flag, check_output, load_program, write_output
from bpfvm.errors import BpfvmError

FORMATS = {".bin": "bin", ".json": "json"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("asm", help="assemble PROG.s to raw bytecode (.bin) or an object (.json)")
    p.add_argument("source", help="assembly file (either syntax)")
    p.add_argument("-o", "--output", help="output file: .bin for raw instruction words, "
                   ".json for an object keeping maps, hook and line numbers, '-' for "
                   "stdout (default: PROG.bin next to the source)")
    p.add_argument("--format", choices=("bin", "json"),
                   help="output format (default: from the output's extension; json for '-')")
    p.add_argument("--syntax", choices=("kernel", "conformance"),
                   help="source syntax (default: detect)")
    add_section_flag(p)
    p.set_defaults(func=run)


def output_format(dest: str, explicit: str | None) -> str:
    """The format to write: the flag's, else the extension's, else an error."""
    if explicit:
        return explicit
    if dest == "-":
        return "json"
    fmt = FORMATS.get(Path(dest).suffix.lower())
    if fmt is None:
        raise BpfvmError(f"-o {dest}: unknown output format (name it .bin or .json, or "
                         "give --format bin|json)")
    return fmt


def run(args: argparse.Namespace) -> int:
    dest = args.output if args.output is not None else str(Path(args.source).with_suffix(".bin"))
    check_output(dest, "-o", inputs=[args.source])
    fmt = output_format(dest, args.format)
    with busy(f"assembling {args.source}", "lines") as step:
        program = load_program(args.source, syntax=args.syntax, section=args.section,
                               progress=step)
    if fmt == "bin":
        data: bytes | str = program.bytecode()
    else:
        data = json.dumps(program.to_json(), indent=1) + "\n"
    write_output(dest, data, "-o", inputs=[args.source])
    note = f"{dest}: {len(program.insns)} instruction slots ({fmt})"
    print(note, file=sys.stderr if dest == "-" else sys.stdout)
    return 0
