"""``bpfvm run``: verify and run a program once and print r0.

A generic program runs on an input buffer (``--mem`` / ``--mem-file``: r1
points at it, r2 holds its length).  A program written for a hook (its
``.hook``, or an object file's ``hook``) runs on that hook's context,
built from ``--ctx FIELD=VALUE,...`` (fields by name, the rest zero) and
verified against the hook; r0 is checked against the hook's contract.
Programs that call MM helpers or point at MM objects need the MM core: they
are refused with the command that runs them (``bpfvm mm run``).

Unverified code (``--no-verify``) never runs unchecked: the interpreter
checks every access, and the JIT is then built in its checked mode (bounds
checks and the instruction budget).  ``--json`` reports faults and
rejections on stdout too.
"""

from __future__ import annotations

import argparse

from bpfvm.cli.busy import busy, busy_while
from bpfvm.cli.common import (
    add_json_flag,
    add_section_flag,
    helpers,
    load_program,
    parse_hex,
    print_json,
)
from bpfvm.errors import BpfvmError


def add_engine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("interp", "jit"), default="interp",
                   help="execution engine (default: interp)")
    p.add_argument("--checked", action="store_true",
                   help="with --engine jit: emit run-time bounds checks and an instruction "
                   "budget (implied by --no-verify)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a program on an input buffer or a hook's context "
                       "and print r0")
    p.add_argument("program", help="assembly (.s), raw bytecode (.bin), object (.json), "
                   "BPF object (.o) or C (.c)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--mem", metavar="HEX", help="input buffer as hex bytes (r1, r2 = len)")
    src.add_argument("--mem-file", metavar="FILE", help="input buffer from a file")
    src.add_argument("--ctx", metavar="FIELD=VALUE,...", action="append", default=[],
                     help="for a program written for a hook: context fields by name "
                     "(repeatable; the rest are zero), e.g. --ctx nr_nodes=2,free_node1=100")
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
        from bpfvm.limits import MAX_INPUT_FILE
        from bpfvm.load import read_bytes

        return bytearray(read_bytes(args.mem_file, MAX_INPUT_FILE, "input"))
    return bytearray()


def _hook(program, path: str):
    from mmcore.hooks.specs import HOOKS

    spec = HOOKS.get(str(program.hook))
    if spec is None:
        raise BpfvmError(f"{path}: .hook {program.hook}: unknown hook (known: "
                         f"{', '.join(HOOKS)})")
    if spec.objects:
        names = ", ".join(spec.objects)
        raise BpfvmError(f"{path}: hook '{spec.name}' points at MM memory ({names}): run it "
                         "attached to the MM core (bpfvm mm pagetables, or bpfvm mm run "
                         "SCENARIO.toml)")
    return spec


def _refuse_mm_helpers(program, path: str) -> None:
    """Programs that ask the MM core something cannot run outside it."""
    from bpfvm import isa
    from mmcore.hooks.helpers import MM_HELPER_SPECS

    mm = {h.id: h.name for h in MM_HELPER_SPECS}
    call = isa.BY_KEY["call"].opcode
    for pc, insn in enumerate(program.insns):
        if insn.opcode == call and insn.src == isa.CALL_HELPER and insn.imm in mm:
            raise BpfvmError(f"{program.where(pc)}: calls {mm[insn.imm]}, an MM helper: run "
                             f"{path} attached to a hook of a scenario (bpfvm mm run "
                             "SCENARIO.toml, with an [[attach]] entry for it)")


def hook_context(spec, items: list[str]) -> tuple[bytearray, dict[str, int]]:
    """The context of hook ``spec`` with the ``--ctx`` fields set, and the values set."""
    ctx = bytearray(spec.ctx_size)
    fields = {f.name: f for f in spec.fields}
    values: dict[str, int] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            name, sep, text = part.partition("=")
            name = name.strip()
            if not sep or not name:
                raise BpfvmError(f"--ctx: expected FIELD=VALUE, not '{part[:40]}'")
            f = fields.get(name)
            if f is None:
                raise BpfvmError(f"--ctx {name[:40]}: hook '{spec.name}' has no such field "
                                 f"(its fields: {', '.join(fields)})")
            value = _ctx_value(text.strip(), f"--ctx {name}")
            lo, hi = -(1 << (8 * f.size - 1)), (1 << (8 * f.size)) - 1
            if not lo <= value <= hi:
                raise BpfvmError(f"--ctx {name}: {value} does not fit in {f.size} bytes")
            ctx[f.offset:f.offset + f.size] = (value % (1 << (8 * f.size))).to_bytes(
                f.size, "little")
            values[name] = value
    return ctx, values


def _ctx_value(text: str, flag: str) -> int:
    body = text.lstrip("+-")
    if not body or len(body) > 24:
        raise BpfvmError(f"{flag}: expected an integer, not '{text[:40]}'")
    try:
        return int(text, 0)
    except ValueError:
        raise BpfvmError(f"{flag}: expected an integer, not '{text[:40]}'") from None


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BpfvmError as exc:
        if not args.json:
            raise
        from bpfvm.errors import VmFault
        from bpfvm.load import Rejected

        kind = "rejected" if isinstance(exc, Rejected) else \
            "fault" if isinstance(exc, VmFault) else "input"
        print_json({"error": str(exc), "kind": kind, "exit": exc.exit_code})
        raise


def _run(args: argparse.Namespace) -> int:
    from bpfvm.isa.bits import s64
    from bpfvm.load import load

    if args.checked and args.engine != "jit":
        raise BpfvmError("--checked applies to --engine jit only")
    with busy(f"assembling {args.program}", "lines", quiet=args.json) as step:
        program = load_program(args.program, section=args.section, progress=step)
    table = helpers()
    spec, values = None, {}
    if program.hook is not None:
        spec = _hook(program, args.program)
        if args.mem is not None or args.mem_file is not None:
            raise BpfvmError(f"{args.program}: written for hook '{spec.name}': give its "
                             "context with --ctx FIELD=VALUE,... (see bpfvm hooks "
                             f"{spec.name})")
        _refuse_mm_helpers(program, args.program)
        mem, values = hook_context(spec, args.ctx)
    elif args.ctx:
        raise BpfvmError(f"--ctx: {args.program} is written for no hook (.hook); give its "
                         "input buffer with --mem or --mem-file")
    else:
        mem = input_buffer(args)
    # Unverified code never runs unchecked: the checked JIT bounds every
    # access and the number of instructions, as the interpreter does.
    checked = args.checked or (args.no_verify and args.engine == "jit")
    with busy_while("JIT compiling" if args.engine == "jit" else "verifying",
                    quiet=args.json):
        loaded = load(program, engine=args.engine, helpers=table, hook=spec,
                      ctx_size=None if spec else len(mem), verify=not args.no_verify,
                      checked=checked)
    engine = loaded.engine
    r0 = engine.run(mem)
    trace = list(getattr(getattr(engine, "env", None), "trace", []) or [])
    signed = s64(r0)
    contract = None
    if spec is not None:
        ok = spec.ret_min <= signed <= spec.ret_max
        contract = {"hook": spec.name, "min": spec.ret_min, "max": spec.ret_max, "ok": ok}
    if args.json:
        report = {"r0": r0, "r0_signed": signed, "mem": mem.hex(), "trace": trace,
                  "engine": args.engine}
        if spec is not None:
            report |= {"ctx": values, "contract": contract}
        print_json(report)
        return 0
    for line in trace:
        print(f"trace: {line}")
    extra = f" ({signed})" if signed != r0 else ""
    print(f"r0 = {r0:#x} = {r0}{extra}")
    if contract is not None:
        verdict = "within" if contract["ok"] else "OUTSIDE"
        note = "" if contract["ok"] else " (the MM core would fall back to its built-in policy)"
        print(f"hook {spec.name}: r0 {verdict} its contract [{spec.ret_min}, "
              f"{spec.ret_max}]{note}")
    return 0
