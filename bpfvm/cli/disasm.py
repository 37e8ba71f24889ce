"""``bpfvm disasm``: print a program in either assembly syntax."""

from __future__ import annotations

import argparse
import sys

from bpfvm.cli.common import add_section_flag, helpers, load_program


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("disasm", help="disassemble PROG.bin / PROG.json / PROG.s / PROG.o / PROG.c")
    p.add_argument("program", help="raw bytecode (.bin), object (.json), assembly (.s), "
                   "BPF object (.o) or C (.c)")
    p.add_argument("--syntax", choices=("kernel", "conformance"), default="kernel",
                   help="output syntax (default: kernel)")
    add_section_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bpfvm.asm.disasm import disassemble, lint

    program = load_program(args.program, section=args.section)
    print(disassemble(program, syntax=args.syntax, helpers=helpers()), end="")
    for warning in lint(program.insns):
        print(f"warning: {warning}", file=sys.stderr)
    return 0
