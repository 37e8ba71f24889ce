"""``bpfvm disasm``: print a program in either assembly syntax, or in
llvm-objdump's layout (``--objdump``: slot numbers and raw bytes).

A file of several programs (one per ``.hook`` section, or an ELF object's
sections) prints every one, in file order, unless ``--section`` picks one;
the text output of every section assembles back into the same file's
programs (one ``.syntax`` line, then one ``.hook`` section each).
"""

from __future__ import annotations

import argparse
import sys

from bpfvm.cli.common import add_section_flag, helpers, load_program, load_programs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("disasm", help="disassemble PROG.bin / PROG.json / PROG.s / PROG.o / PROG.c")
    p.add_argument("program", help="raw bytecode (.bin), object (.json), assembly (.s), "
                   "BPF object (.o) or C (.c)")
    layout = p.add_mutually_exclusive_group()
    layout.add_argument("--syntax", choices=("kernel", "conformance"), default=None,
                        help="output syntax (default: kernel)")
    layout.add_argument("--objdump", action="store_true",
                        help="llvm-objdump -d layout: slot, raw bytes, instruction")
    add_section_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bpfvm.asm.disasm import disassemble, lint, objdump

    if args.section is not None:
        programs = [load_program(args.program, section=args.section)]
    else:
        programs = load_programs(args.program)
    if args.objdump:
        sys.stdout.write(objdump(programs, args.program))
    else:
        syntax = args.syntax or "kernel"
        texts = [disassemble(p, syntax=syntax, helpers=helpers()) for p in programs]
        # one .syntax line for the file: it must come before the first instruction
        texts[1:] = ["".join(t.splitlines(keepends=True)[1:]) for t in texts[1:]]
        sys.stdout.write("\n".join(texts))
    for program in programs:
        where = f"[{program.hook}] " if len(programs) > 1 else ""
        for warning in lint(program.insns):
            print(f"warning: {where}{warning}", file=sys.stderr)
    return 0
