"""``bpfvm hooks``: the hook points, their contexts, contracts and helpers."""

from __future__ import annotations

import argparse

from bpfvm.cli.common import add_json_flag, console, print_json
from bpfvm.errors import BpfvmError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hooks", help="list hook points: context layout, return contract, helpers")
    p.add_argument("name", nargs="?", help="show only this hook")
    add_json_flag(p)
    p.set_defaults(func=run)


def _as_json(hook) -> dict:
    return {
        "name": hook.name, "doc": hook.doc, "ctx_size": hook.ctx_size,
        "fields": [{"name": f.name, "offset": f.offset, "size": f.size,
                    "writable": f.writable, "pointer": f.pointer, "doc": f.doc}
                   for f in hook.fields],
        "return": {"min": hook.ret_min, "max": hook.ret_max, "doc": hook.ret_doc,
                   "pointer": hook.returns_pointer},
        "helpers": list(hook.helpers),
    }


def run(args: argparse.Namespace) -> int:
    from mmcore.hooks.specs import HOOKS

    hooks = list(HOOKS.values())
    if args.name:
        if args.name not in HOOKS:
            raise BpfvmError(f"unknown hook '{args.name}' (known: {', '.join(HOOKS)})")
        hooks = [HOOKS[args.name]]
    if args.json:
        print_json([_as_json(h) for h in hooks])
        return 0
    from rich.table import Table

    out = console(args)
    for hook in hooks:
        table = Table(title=f"[bold]{hook.name}[/] — {hook.doc}", title_justify="left")
        for col in ("offset", "size", "field", "access", "meaning"):
            table.add_column(col, justify="right" if col in ("offset", "size") else "left")
        for f in hook.fields:
            access = "read/write" if f.writable else "read"
            if f.pointer:
                access = f"ptr to {f.pointer}"
            table.add_row(str(f.offset), str(f.size), f.name, access, f.doc)
        out.print(table)
        ret = f"r0 in [{hook.ret_min}, {hook.ret_max}]: {hook.ret_doc}"
        out.print(f"  returns {ret}")
        out.print(f"  helpers: {', '.join(hook.helpers) or '(none)'}\n")
    return 0
