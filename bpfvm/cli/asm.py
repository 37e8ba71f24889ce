"""``bpfvm asm``: assemble a source file to bytecode or an object file."""

from __future__ import annotations

import argparse
from pathlib import Path

from bpfvm.cli.common import add_section_flag, load_program


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("asm", help="assemble PROG.s to raw bytecode (.bin) or an object (.json)")
    p.add_argument("source", help="assembly file (either syntax)")
    p.add_argument("-o", "--output", help="output file: .bin for raw instruction words, "
                   ".json for an object keeping maps, hook and line numbers "
                   "(default: PROG.bin next to the source)")
    p.add_argument("--syntax", choices=("kernel", "conformance"),
                   help="source syntax (default: detect)")
    add_section_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    program = load_program(args.source, syntax=args.syntax, section=args.section)
    out = Path(args.output) if args.output else Path(args.source).with_suffix(".bin")
    program.save(out)
    print(f"{out}: {len(program.insns)} instruction slots")
    return 0
