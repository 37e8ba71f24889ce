"""``bpfvm run``: verify and run a program once on an input buffer."""

from __future__ import annotations

import argparse

from bpfvm.cli.common import (
    add_json_flag,
    add_section_flag,
    helpers,
    load_program,
    parse_hex,
    print_json,
)
from bpfvm.errors import BpfvmError
from bpfvm.isa.bits import s64
from bpfvm.limits import MAX_INPUT_FILE
from bpfvm.loader import read_bytes


def add_engine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("interp", "jit"), default="interp",
                   help="execution engine (default: interp)")
    p.add_argument("--checked", action="store_true",
                   help="with --engine jit: emit run-time bounds checks and an instruction "
                   "budget (implied by --no-verify)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a program on an input buffer and print r0")
    p.add_argument("program", help="assembly (.s), raw bytecode (.bin) or object (.json)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--mem", metavar="HEX", help="input buffer as hex bytes (r1, r2 = len)")
    src.add_argument("--mem-file", metavar="FILE", help="input buffer from a file")
    add_engine_flags(p)
    p.add_argument("--no-verify", action="store_true",
                   help="skip the verifier (every access is still checked at run time: "
                   "the interpreter always, the JIT in its checked mode)")
    add_section_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def input_buffer(args: argparse.Namespace) -> bytearray:
    if args.mem is not None:
        return parse_hex(args.mem)
    if args.mem_file is not None:
        return bytearray(read_bytes(args.mem_file, MAX_INPUT_FILE, "input"))
    return bytearray()


def run(args: argparse.Namespace) -> int:
    from bpfvm.loader import load

    if args.checked and args.engine != "jit":
        raise BpfvmError("--checked applies to --engine jit only")
    program = load_program(args.program, section=args.section)
    mem = input_buffer(args)
    # Unverified code never runs unchecked: the checked JIT bounds every
    # access and the number of instructions, as the interpreter does.
    checked = args.checked or (args.no_verify and args.engine == "jit")
    loaded = load(program, engine=args.engine, helpers=helpers(), ctx_size=len(mem),
                  verify=not args.no_verify, checked=checked)
    engine = loaded.engine
    r0 = engine.run(mem)
    trace = list(getattr(getattr(engine, "env", None), "trace", []) or [])
    if args.json:
        print_json({"r0": r0, "r0_signed": s64(r0),
                    "mem": mem.hex(), "trace": trace, "engine": args.engine})
        return 0
    for line in trace:
        print(f"trace: {line}")
    signed = s64(r0)
    extra = f" ({signed})" if signed != r0 else ""
    print(f"r0 = {r0:#x} = {r0}{extra}")
    return 0
