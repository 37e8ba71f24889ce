"""``bpfvm cc``: compile a C policy to a BPF object with ``bpfvm.h`` on the include path.

Uses the system clang when it builds BPF, else the clang of the ``ziglang``
package (the ``cc`` extra); :mod:`bpfvm.toolchain` finds it and reports
what to install when neither exists (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bpfvm.errors import BpfvmError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cc", help="compile a C policy to a BPF object (.o)")
    p.add_argument("source", help="C source (.c)")
    p.add_argument("-o", dest="output", metavar="OBJ", help="object to write (default: "
                   "SOURCE with .o)")
    p.add_argument("-O", dest="opt", default="2", choices=("0", "1", "2", "3", "s"),
                   help="optimisation level (default 2)")
    p.add_argument("-g", dest="debug", action="store_true", default=True,
                   help="emit BTF line info, for messages naming C lines (the default)")
    p.add_argument("--no-debug", dest="debug", action="store_false",
                   help="no debug information (no C lines in messages)")
    p.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                   help="another include directory (repeatable)")
    p.add_argument("-D", dest="define", action="append", default=[], metavar="NAME[=VALUE]",
                   help="define a macro (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bpfvm.cli.common import check_output, header_text
    from bpfvm.toolchain import compile_c

    source = Path(args.source)
    if source.is_dir():
        raise BpfvmError(f"{args.source}: is a directory")
    if source.exists() and not source.is_file():
        raise BpfvmError(f"{args.source}: not a regular file")
    if source.suffix.lower() != ".c":
        raise BpfvmError(f"{args.source}: expected a C source file (.c)")
    out = Path(args.output) if args.output else source.with_suffix(".o")
    check_output(str(out), "-o", [source])
    extra = tuple(f"-I{d}" for d in args.include) + tuple(f"-D{d}" for d in args.define)
    compile_c(args.source, out, header=header_text(), opt=f"-O{args.opt}", debug=args.debug,
              extra=extra)
    return 0
