"""``bpfvm hooks``: the hook points, their contexts, contracts and helpers.

For each hook: its context layout, what r0 must be, what the MM core does
with a value outside that contract, and the signature of every helper the
hook may call (arguments, return value, errors).  The layouts, ranges and
helper lists come from the hook records (:mod:`mmcore.hooks.specs`) and the
helper tables; the words about arguments and errors are here, and a test
checks them against the tables (every helper documented, one name per
argument).
"""

from __future__ import annotations

import argparse

from bpfvm.cli.common import add_json_flag, console, print_json
from bpfvm.errors import BpfvmError

# name -> (argument names in r1.., return value, errors).  Argument kinds come
# from the helper record (ARG_KINDS).
HELPER_DOCS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "map_lookup_elem": (("map", "key"), "pointer to the value stored under *key, or NULL",
                        "NULL when the key is absent (or out of range for an array map); "
                        "the program must test for NULL before using the pointer"),
    "map_update_elem": (("map", "key", "value", "flags"),
                        "0 on success, else a negative errno",
                        "-EINVAL for flags other than 0 (any), 1 (only new), 2 (only "
                        "existing); -E2BIG when the map is full or the array index out of "
                        "range; -EEXIST (flags 1, key present); -ENOENT (flags 2, key absent)"),
    "map_delete_elem": (("map", "key"), "0 on success, else a negative errno",
                        "-ENOENT when the key is absent; -EINVAL for array maps"),
    "ktime_get_ns": ((), "the host's clock in nanoseconds", "none"),
    "trace_printk": (("fmt", "fmt_size", "arg1", "arg2", "arg3"),
                     "bytes appended to the trace, or -EINVAL",
                     "-EINVAL for an empty or malformed format (supported: %d %i %u %x %X %c "
                     "%p %%, flags - 0, a width, length h hh l ll z; at most 3 conversions)"),
    "get_prandom_u32": ((), "a pseudo-random 32-bit number from the run's seeded generator",
                        "none"),
    "mm_node_free_pages": (("node",), "free pages (4 KiB) on the node",
                           "0 for a node that does not exist"),
    "mm_node_distance": (("from_node", "to_node"), "node distance (10 local)",
                         "0 when either node does not exist"),
    "mm_free_blocks": (("node", "order"), "free buddy blocks of this order or larger",
                       "0 for a node that does not exist or an order past the largest"),
    "mm_proc_rss": (("pid",), "resident pages (4 KiB units) of the process",
                    "0 for a process that does not exist"),
    "mm_proc_huge": (("pid", "size"), "huge pages of this size the process holds "
                     "(size 1 = 2 MiB, 2 = 1 GiB)",
                     "0 for a process that does not exist or a size other than 1 or 2"),
    "mm_tick": ((), "the current scenario tick", "none"),
}

ARG_KINDS = {  # bpfvm.helpers.Arg value -> what the verifier requires of the register
    "anything": "u64: any initialised value",
    "map": "map handle (r = map[NAME] ll)",
    "map_key": "pointer to key_size initialised bytes",
    "map_value": "pointer to value_size initialised bytes",
    "mem": "pointer to readable memory of the next argument's size",
    "size": "u64: size of the preceding pointer",
    "ctx": "the context pointer",
    "format_value": "u64 the format reads (initialised only if the format converts it)",
}

MM_ONLY = ("answered by the MM core only: bpfvm run refuses a program that calls it "
           "(run it attached: bpfvm mm run)")

# What the MM core does with an r0 outside the contract, per hook.
FALLBACK = ("the MM core uses its built-in policy for this decision and counts a fallback "
            "(bpfvm mm run: the hooks table's 'fallbacks' column, and a note when a hook "
            "falls back); a program that faults counts an error too and the built-in "
            "policy decides; the proposal itself changes nothing")
# Per policy hook: (conditions besides r0's range, what the built-in policy does).
POLICY_CHECKS: dict[str, tuple[str, str]] = {
    "placement": ("or a node the machine does not have",
                  "the built-in policy allocates on the process's home node"),
    "hugepage": ("or a page size the VMA does not allow (bit r0 of 'allowed' clear)",
                 "the built-in policy takes the largest allowed size"),
    "reclaim": ("or target_pid written with a pid that is no live process",
                "the built-in policy splits by swappiness and reclaims from every process"),
    "zone_resize": ("", "the built-in policy leaves the zones as they are"),
    "lifetime": ("", "the built-in policy keeps the source's own migratetype"),
}
PT_CONTRACT: dict[str, str] = {
    "pt_map": "a pointer that is not an 8-byte-aligned PTE slot of the region past its "
    "metadata, or a fault: counted (bad pointers / faults in bpfvm mm pagetables) and the "
    "page fault fails cleanly; 0 means 'full': the table is rebuilt (grown) and the map "
    "retried",
    "pt_unmap": "a value outside the range or a fault: counted, and the unmap fails cleanly",
    "pt_lookup": "a pointer that is not a PTE slot of the region, or a fault: counted, and "
    "the address is treated as not mapped",
}


def out_of_contract(hook) -> str:
    """What the MM core does when ``hook``'s program returns a value outside
    its contract (or faults)."""
    if hook.name in PT_CONTRACT:
        return PT_CONTRACT[hook.name]
    extra, builtin = POLICY_CHECKS.get(hook.name, ("", "the built-in policy decides"))
    cond = f"r0 outside [{hook.ret_min}, {hook.ret_max}]" + (f", {extra}" if extra else "")
    return f"{cond}: {FALLBACK}; {builtin}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hooks", help="list hook points: context layout, return contract, "
                       "what happens outside it, helper signatures")
    p.add_argument("name", nargs="?", help="show only this hook")
    add_json_flag(p)
    p.add_argument("--markdown", action="store_true",
                   help="print Markdown (docs/hooks.md is this output)")
    p.set_defaults(func=run)


def signature(spec) -> str:
    """``name(a, b) -> what`` for a helper record."""
    names = HELPER_DOCS.get(spec.name, ((), "", ""))[0]
    if len(names) != len(spec.args):
        names = tuple(f"r{i + 1}" for i in range(len(spec.args)))
    return f"{spec.name}({', '.join(names)})"


def helper_json(spec) -> dict:
    names, returns, errors = HELPER_DOCS.get(spec.name, ((), spec.doc, ""))
    mm = spec.id >= 1000
    return {
        "name": spec.name, "id": spec.id, "signature": signature(spec),
        "args": [{"reg": f"r{i + 1}", "name": names[i] if i < len(names) else f"r{i + 1}",
                  "kind": a.value, "requires": ARG_KINDS.get(a.value, a.value)}
                 for i, a in enumerate(spec.args)],
        "returns": returns or spec.doc, "errors": errors or "none",
        "needs_mm_core": mm, "doc": spec.doc,
    }


def _as_json(hook, table) -> dict:
    return {
        "name": hook.name, "doc": hook.doc, "ctx_size": hook.ctx_size,
        "fields": [{"name": f.name, "offset": f.offset, "size": f.size,
                    "writable": f.writable, "pointer": f.pointer, "doc": f.doc}
                   for f in hook.fields],
        "return": {"min": hook.ret_min, "max": hook.ret_max, "doc": hook.ret_doc,
                   "pointer": hook.returns_pointer},
        "out_of_contract": out_of_contract(hook),
        "objects": dict(hook.objects),
        "helpers": list(hook.helpers),
        "helper_signatures": [helper_json(table[h]) for h in hook.helpers if h in table],
    }


def run(args: argparse.Namespace) -> int:
    from mmcore.hooks.helpers import policy_helpers
    from mmcore.hooks.specs import HOOKS

    table = {s.name: s for s in policy_helpers()}
    hooks = list(HOOKS.values())
    if args.name:
        if args.name not in HOOKS:
            raise BpfvmError(f"unknown hook '{args.name[:40]}' (known: {', '.join(HOOKS)})")
        hooks = [HOOKS[args.name]]
    if args.json and args.markdown:
        raise BpfvmError("--json and --markdown: choose one output format")
    if args.json:
        print_json([_as_json(h, table) for h in hooks])
        return 0
    if args.markdown:
        print(markdown(hooks, table), end="")
        return 0
    from rich.table import Table

    out = console(args)
    used: list[str] = []
    for hook in hooks:
        t = Table(title=f"[bold]{hook.name}[/] — {hook.doc}", title_justify="left")
        for col in ("offset", "size", "field", "access", "meaning"):
            t.add_column(col, justify="right" if col in ("offset", "size") else "left")
        for f in hook.fields:
            access = "read/write" if f.writable else "read"
            if f.pointer:
                access = f"ptr to {f.pointer}"
            t.add_row(str(f.offset), str(f.size), f.name, access, f.doc)
        out.print(t)
        out.print(f"  returns r0 in [{hook.ret_min}, {hook.ret_max}]: {hook.ret_doc}",
                  markup=False)
        out.print(f"  outside the contract: {out_of_contract(hook)}",
                  markup=False)
        for name, doc in hook.objects.items():
            out.print(f"  object {name}: {doc} (size: .object {name} SIZE in the program, "
                      f"or --object {name}=SIZE)", markup=False)
        names = [h for h in hook.helpers if h in table]
        out.print(f"  helpers: {', '.join(signature(table[h]) for h in names) or '(none)'}\n",
                  markup=False)
        used += [h for h in names if h not in used]
    if used:
        _helper_table(out, [table[h] for h in used])
    return 0


def _helper_table(out, specs) -> None:
    from rich.table import Table

    t = Table(title="[bold]helpers[/] — call NAME; arguments in r1..r5, result in r0; "
              "r1-r5 are clobbered", title_justify="left")
    for col in ("id", "signature", "arguments", "returns", "errors"):
        t.add_column(col, justify="right" if col == "id" else "left")
    for spec in specs:
        h = helper_json(spec)
        argdoc = "; ".join(f"{a['reg']} {a['name']}: {a['requires']}" for a in h["args"])
        errors = h["errors"] + (f"; {MM_ONLY}" if h["needs_mm_core"] else "")
        t.add_row(str(spec.id), h["signature"], argdoc or "-", h["returns"], errors)
    out.print(t)


def markdown(hooks, table) -> str:
    """The hooks and helpers as Markdown (docs/hooks.md)."""
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|")

    lines = ["# Hooks and helpers", "",
             "<!-- generated by `bpfvm hooks --markdown`; do not edit -->", "",
             "Every hook program receives a pointer to its context in r1 and returns r0.  "
             "Fields are little-endian unsigned integers unless their meaning says otherwise; "
             "`read/write` fields are the program's outputs.  The verifier checks a program "
             "against its hook: context accesses, the range of r0, the helpers it may call.  "
             "The MM core checks r0 again at run time, against its state.", ""]
    used: list[str] = []
    for hook in hooks:
        lines += [f"## {hook.name}", "", hook.doc, "",
                  "| offset | size | field | access | meaning |", "|---:|---:|---|---|---|"]
        for f in hook.fields:
            access = f"ptr to {f.pointer}" if f.pointer else \
                ("read/write" if f.writable else "read")
            lines.append(f"| {f.offset} | {f.size} | `{f.name}` | {access} | {cell(f.doc)} |")
        lines += ["", f"- **returns** r0 in [{hook.ret_min}, {hook.ret_max}]: "
                  f"{cell(hook.ret_doc)}",
                  f"- **outside the contract**: {out_of_contract(hook)}"]
        for name, doc in hook.objects.items():
            lines.append(f"- **object** `{name}`: {doc}; its size: `.object {name} SIZE` "
                         f"in assembly, `BPFVM_OBJECT({name}, BYTES);` in C, or "
                         f"`--object {name}=SIZE`")
        names = [h for h in hook.helpers if h in table]
        lines += [f"- **helpers**: {', '.join(f'`{h}`' for h in names) or 'none'}", ""]
        used += [h for h in names if h not in used]
    lines += ["## Helpers", "", "`call NAME`: arguments in r1..r5, the result in r0; r1-r5 "
              "are clobbered.", "",
              "| id | signature | arguments | returns | errors |", "|---:|---|---|---|---|"]
    for name in used:
        h = helper_json(table[name])
        argdoc = "; ".join(f"{a['reg']} `{a['name']}`: {a['requires']}" for a in h["args"])
        errors = h["errors"] + (f"; {MM_ONLY}" if h["needs_mm_core"] else "")
        lines.append(f"| {h['id']} | `{h['signature']}` | {cell(argdoc or '-')} | "
                     f"{cell(h['returns'])} | {cell(errors)} |")
    return "\n".join(lines) + "\n"
