"""``bpfvm verify``: run the static verifier on a program and show the verdict.

Exit 0 when accepted, 1 when rejected, 2 for bad usage or unreadable input.
The context is the hook named by ``--hook`` (or by the program's ``.hook``
directive), else a buffer of ``--ctx-size`` bytes (the generic ``mem``
type).  A hook's pointer fields point at memory objects whose sizes the
program declares with ``.object NAME SIZE``; ``--object NAME=SIZE``
overrides a declaration.  This module only parses arguments and prints.
"""

from __future__ import annotations

import argparse

from bpfvm.cli.busy import busy
from bpfvm.cli.common import (
    TextConsole,
    add_json_flag,
    escape,
    helpers,
    load_programs,
    parse_size_arg,
    print_json,
)
from bpfvm.errors import BpfvmError
from bpfvm.hookspec import HookSpec
from bpfvm.limits import MAX_OBJECT_SIZE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="statically verify a program (exit 0 accepted, "
                       "1 rejected)")
    p.add_argument("program", help="assembly (.s), raw bytecode (.bin), object (.json), "
                   "BPF object (.o) or C (.c)")
    ctx = p.add_mutually_exclusive_group()
    ctx.add_argument("--hook", metavar="NAME", help="hook the program attaches to "
                     "(default: the program's .hook directive)")
    ctx.add_argument("--ctx-size", metavar="SIZE",
                     help="generic program: r1 points at a buffer of SIZE bytes, r2 = SIZE "
                     "(units allowed: 64KiB)")
    p.add_argument("--object", metavar="NAME=SIZE", action="append", default=[],
                   help="size of a memory object the hook's pointer fields point at "
                   "(bytes, or with a unit: region=512KiB); overrides the program's "
                   ".object NAME SIZE")
    p.add_argument("--log-level", type=int, choices=(0, 1, 2), default=0,
                   help="0: verdict only; 1: and every branch; 2: and the register and stack state "
                   "after each instruction; 1 and 2 end with a 'processed N insns' line")
    add_json_flag(p)
    p.set_defaults(func=run)


def _hooks() -> dict[str, HookSpec]:
    try:
        from mmcore.hooks.specs import HOOKS
    except ImportError:
        return {}
    return dict(HOOKS)


MAX_CTX_SIZE = MAX_OBJECT_SIZE  # the largest context or object the verifier is asked about


def _objects(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, sep, size = item.partition("=")
        if not sep or not name:
            raise BpfvmError(f"--object: expected NAME=SIZE, not '{item[:40]}'")
        out[name] = _size(size, f"--object {name}")
    return out


def _size(text: str, flag: str) -> int:
    value = parse_size_arg(text, flag)
    if value > MAX_CTX_SIZE:
        raise BpfvmError(f"{flag}: {value} bytes is more than the limit of "
                         f"{MAX_CTX_SIZE >> 30} GiB")
    return value


def run(args: argparse.Namespace) -> int:
    """Verify the file's program, or each of its ``.hook`` sections."""
    from bpfvm.asm.sections import pick_section

    if args.ctx_size is not None:
        args.ctx_size = _size(args.ctx_size, "--ctx-size")
        if args.object:
            raise BpfvmError("--object applies to a hook's objects, not to --ctx-size")
    _objects(args.object)  # checked before the (slow) assembly
    with busy(f"assembling {args.program}", "lines", quiet=args.json) as step:
        programs = load_programs(args.program, progress=step)
    if len(programs) > 1 and args.hook:
        programs = [pick_section(programs, args.hook, args.program)]
    codes, reports = [], []
    for program in programs:
        label = args.program if len(programs) == 1 else f"{args.program} [{program.hook}]"
        code, report = _verify_one(program, args, label)
        codes.append(code)
        reports.append(report)
    if args.json:
        print_json(reports[0] if len(reports) == 1 else reports)
    return max(codes)


def _verify_one(program, args: argparse.Namespace, label: str) -> tuple[int, dict]:
    from bpfvm.load import formatter
    from verifier import verify

    hook_name = args.hook or (program.hook if args.ctx_size is None else None)
    hook = None
    if not hook_name and args.object:
        raise BpfvmError("--object: the program attaches to no hook (give --hook NAME)")
    if not hook_name and program.objects and args.ctx_size is None:
        name = next(iter(program.objects))
        raise BpfvmError(f"{args.program}: .object {name}: the program attaches to no hook "
                         "(add .hook NAME or give --hook NAME)")
    if hook_name:
        hooks = _hooks()
        if hook_name not in hooks:
            known = ", ".join(sorted(hooks)) or "none defined"
            where = "--hook" if args.hook else f"{args.program}: .hook"
            raise BpfvmError(f"{where}: unknown hook '{hook_name}' (known: {known})")
        hook = hooks[hook_name]
    flags = _objects(args.object)
    objects = dict(program.objects) if args.ctx_size is None else {}
    if hook is not None:
        declared = [name for name in objects if name not in hook.objects]
        if declared:
            have = f"its objects: {', '.join(hook.objects)}" if hook.objects else \
                "it points at no object"
            raise BpfvmError(f"{args.program}: .object {declared[0]}: hook '{hook.name}' has "
                             f"no object of that name ({have})")
    objects.update(flags)
    if hook is not None:
        unknown = [name for name in flags if name not in hook.objects]
        if unknown:
            have = f"its objects: {', '.join(hook.objects)}" if hook.objects else \
                "it points at no object"
            raise BpfvmError(f"--object {unknown[0]}: hook '{hook.name}' has no object of "
                             f"that name ({have})")
        missing = [name for name in hook.objects if name not in objects]
        if missing:
            raise BpfvmError(f"{label}: hook '{hook.name}' points at object '{missing[0]}': "
                             f"declare its size in the program (.object {missing[0]} SIZE) "
                             f"or give --object {missing[0]}=SIZE")
    note = _region_note(program, hook, objects)
    table = helpers()
    with busy(f"verifying {label}", "instruction visits", quiet=args.json) as step:
        verdict = verify(program, hook, ctx_size=args.ctx_size, helpers=table,
                         objects=objects, log_level=args.log_level,
                         formatter=formatter(program, table), progress=step)
    code = 0 if verdict.accepted else 1
    report = {"program": label, "hook": hook.name if hook else None, **verdict.to_json()}
    if args.json:
        return code, report
    out = TextConsole(args)
    for line in verdict.log:
        out.print(line, markup=False)
    if args.log_level >= 1:
        out.print(_processed(verdict.stats), markup=False, highlight=False)
    target = f"hook '{hook.name}'" if hook else f"a buffer of {args.ctx_size or 0} bytes"
    if verdict.accepted:
        st = verdict.stats
        out.print(f"[green]{_esc(label)}: accepted[/] for {target} ({st['insns']} "
                  f"instructions, {st['visits']} visits, {st['seconds'] * 1000:.1f} ms)")
        return code, report
    for d in verdict.diagnostics:
        out.print(f"[bold red]{_esc(d.headline)}[/]")
        for extra in (d.loc.text if d.loc else "", d.insn, d.state):
            if extra:
                out.print(f"    {_esc(extra)}", highlight=False)
    n = len(verdict.diagnostics)
    out.print(f"[red]{_esc(label)}: rejected[/] for {target} ({n} problem{'s' * (n != 1)})")
    if note:
        out.print(f"[yellow]note:[/] {_esc(note)}")
    return code, report


def _processed(stats: dict) -> str:
    """The kernel verifier log's last line, from this verifier's counters:
    instructions visited against the visit budget, and abstract states kept."""
    from verifier import VISIT_BUDGET

    line = (f"processed {stats['visits']} insns (limit {VISIT_BUDGET}) "
            f"total_states {stats['nodes']}")
    if stats.get("max_insns") is not None:
        line += f"; a run executes at most {stats['max_insns']} instructions"
    return line


def _region_note(program, hook: HookSpec | None, objects: dict[str, int]) -> str | None:
    """For a page-table program whose region-size constant and region object
    differ, what the MM core does instead (it sets both to the region's size)."""
    if hook is None or "region" not in objects:
        return None
    try:
        from mmcore.pagetables.loading import PT_HOOKS, size_slot
    except ImportError:
        return None
    at = size_slot(program) if hook.name in PT_HOOKS else None
    found = program.constant(at) if at is not None else None
    if found is None or found[1] == objects["region"]:
        return None
    return (f"{program.where(at)}: the region-size constant is {found[1]} bytes but the region "
            f"is {objects['region']} bytes; the MM core sets both to the size of the region "
            "it runs the program on (bpfvm mm pagetables)")


def _esc(text: str) -> str:
    return escape(text)
