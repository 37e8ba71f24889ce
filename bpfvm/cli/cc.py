"""``bpfvm cc``: compile a C policy to a BPF object with ``bpfvm.h`` on the include path.

Uses the system clang when it builds BPF, else the clang of the ``ziglang``
package (the ``cc`` extra); :mod:`bpfvm.toolchain` finds it and reports
what to install when neither exists (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path


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
    from bpfvm.cli.common import header_text
    from bpfvm.toolchain import compile_c

    out = Path(args.output) if args.output else Path(args.source).with_suffix(".o")
    extra = tuple(f"-I{d}" for d in args.include) + tuple(f"-D{d}" for d in args.define)
    compile_c(args.source, out, header=header_text(), opt=f"-O{args.opt}", debug=args.debug,
              extra=extra)
    return 0
