"""Agreement with the Linux verifier on its own selftests.

Reads ``tools/testing/selftests/bpf/progs/verifier_*.c`` from a Linux source
tree (nothing of it is copied here), extracts each ``__naked`` test program's
inline assembly (kernel syntax) and its privileged verdict (``__failure``:
rejected, otherwise accepted), assembles it with our assembler and runs our
verifier with the generic environment (r1 a buffer, r2 its size) and the
standard helpers.  Tests that need what the generic environment lacks are
skipped and counted by reason: context layouts (``offsetof``, ``__sk_buff``
fields), kfuncs, helpers or map types we do not have, subprograms written as
separate C functions, raw instruction words, syntax our assembler does not
take.  Prints the agreement and lists the kernel-accepted programs we reject.

    cd /tmp && apt-get download linux-source-6.12
    dpkg-deb -x linux-source-6.12_*.deb src && tar -C src -xf src/usr/src/linux-source-6.12.tar.xz
    PYTHONPATH=. python benchmarks/kernel_selftests.py \\
        src/linux-source-6.12/tools/testing/selftests/bpf/progs [-v] [--list]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bpfvm.asm.assembler import assemble
from bpfvm.errors import BpfvmError
from bpfvm.stdhelpers import standard_helpers
from verifier import verify

HELPERS = standard_helpers()
OUR_HELPERS = {f"bpf_{name}" for name in ("map_lookup_elem", "map_update_elem",
                                          "map_delete_elem", "ktime_get_ns", "trace_printk",
                                          "get_prandom_u32")}
FLAGS = "map flags"  # marks a map declared with access flags we do not model
CTX_SIZE = 256  # a generic context: readable bytes, no field layout
BASIC = {"char": 1, "__u8": 1, "u8": 1, "__s8": 1, "short": 2, "__u16": 2, "u16": 2,
         "int": 4, "unsigned int": 4, "unsigned": 4, "__u32": 4, "u32": 4, "__s32": 4,
         "long": 8, "unsigned long": 8, "long long": 8, "unsigned long long": 8,
         "__u64": 8, "u64": 8, "__s64": 8, "void *": 8}
MAP_TYPES = {"BPF_MAP_TYPE_ARRAY": "array", "BPF_MAP_TYPE_HASH": "hash"}

# Programs whose verdict depends on what our generic environment defines
# differently from the kernel's, named one by one with the difference.
ENVIRONMENT = {
    "verifier_uninit.c:read_uninitialized_register":
        "reads r2 at entry (the generic environment sets r2)",
    "verifier_var_off.c:variable_offset_ctx_access":
        "context layout",
    "verifier_bounds.c:shift_with_oversized_count_operand":
        "shift by the operand width (our ISA masks the count)",
    "verifier_basic_stack.c:invalid_fp_arithmetic":
        "frame-pointer subtraction (a kernel JIT restriction)",
    "verifier_map_ptr.c:ptr_read_ops_field_accepted":
        "reads the kernel's struct bpf_map through a map handle",
}


@dataclass
class Test:
    file: str
    name: str
    accept: bool  # the kernel's privileged verdict
    asm: str | None = None
    skip: str | None = None
    maps: list[str] = field(default_factory=list)


def _defines(text: str) -> dict[str, int]:
    out = {}
    for m in re.finditer(r"^#define\s+(\w+)\s+\(?(-?\d+|0x[0-9a-fA-F]+)\)?\s*$", text, re.M):
        out[m.group(1)] = int(m.group(2), 0)
    return out


def _structs(text: str, defines: dict[str, int]) -> dict[str, int]:
    """Sizes of the file's structs whose fields are basic types or arrays of them."""
    sizes: dict[str, int] = {}
    for m in re.finditer(r"struct\s+(\w+)\s*\{([^{}]*)\}\s*;", text):
        off = align = 0
        ok = True
        for decl in m.group(2).split(";"):
            decl = decl.strip()
            if not decl:
                continue
            d = re.match(r"(.+?)\s*\b(\w+)\s*(?:\[(\w+)\])?$", decl)
            if d is None:
                ok = False
                break
            ctype = d.group(1).strip()
            size = BASIC.get(ctype) or sizes.get(ctype.removeprefix("struct ").strip())
            if size is None:
                ok = False
                break
            count = 1
            if d.group(3):
                count = defines.get(d.group(3)) or (int(d.group(3), 0)
                                                    if d.group(3)[0].isdigit() else 0)
                if not count:
                    ok = False
                    break
            a = min(size, 8)
            off = (off + a - 1) // a * a + size * count
            align = max(align, a)
        if ok and align:
            sizes[m.group(1)] = (off + align - 1) // align * align
    return sizes


def _maps(text: str, defines: dict[str, int]) -> dict[str, str | None]:
    """Each map of the file: our ``.map`` directive, or None when we lack its kind."""
    structs = _structs(text, defines)
    out: dict[str, str | None] = {}
    for m in re.finditer(r"struct\s*\{([^{}]*)\}\s*(\w+)\s+SEC\(\"\.maps\"\)", text):
        body, name = m.group(1), m.group(2)
        fields = dict(re.findall(r"__(?:uint|type)\((\w+),\s*([^)]+?)\)", body))
        kind = MAP_TYPES.get(fields.get("type", ""))
        sizes = {}
        for what in ("key", "value"):
            if f"{what}_size" in fields:
                v = fields[f"{what}_size"].strip()
                sz = re.fullmatch(r"sizeof\((.+)", v)
                sizes[what] = (BASIC.get(sz.group(1).strip()) if sz else defines.get(v)
                               or (int(v, 0) if v[:1].isdigit() else None))
            elif what in fields:
                t = fields[what].strip()
                sizes[what] = BASIC.get(t) or structs.get(t.removeprefix("struct ").strip())
        entries = fields.get("max_entries", "1").strip()
        n = defines.get(entries) or (int(entries, 0) if entries[0].isdigit() else None)
        if "map_flags" in fields:
            out[name] = FLAGS  # read-only / write-only program access
        elif kind is None or not sizes.get("key") or not sizes.get("value") or not n:
            out[name] = None
        else:
            out[name] = (f".map {name} {kind} key={sizes['key']} value={sizes['value']} "
                         f"entries={n}")
    return out


def _asm_strings(body: str) -> tuple[str, str] | None:
    """The assembly text of ``asm volatile (...)`` and its operand part."""
    m = re.search(r"asm\s+volatile\s*\(", body)
    if m is None:
        return None
    i = m.end()
    parts = []
    while True:
        while i < len(body) and body[i] in " \t\n":
            i += 1
        if i < len(body) and body[i] == '"':
            j = i + 1
            while body[j] != '"':
                j += 2 if body[j] == "\\" else 1
            parts.append(body[i + 1:j])
            i = j + 1
            continue
        break
    rest = body[i:]
    if not rest.lstrip().startswith((":", ")")):
        return None  # a macro between the strings
    return "".join(parts), rest


def _operands(rest: str) -> dict[str, tuple[str, str]]:
    out = {}
    pattern = r"(__imm(?:_const|_addr|_ptr|_insn)?)\((\w+)(?:,\s*([^()]*(?:\([^()]*\))?[^()]*))?\)"
    for m in re.finditer(pattern, rest):
        out[m.group(2)] = (m.group(1), (m.group(3) or "").strip())
    return out


def _labels(lines: list[str]) -> list[str]:
    """GNU numeric local labels (``1:``, ``goto 1f``) as unique names."""
    defs: dict[str, list[int]] = {}
    for k, line in enumerate(lines):
        m = re.match(r"\s*(\d+):", line)
        if m:
            defs.setdefault(m.group(1), []).append(k)
    out = []
    for k, line in enumerate(lines):
        def ref(m: re.Match[str], k: int = k) -> str:
            n, d = m.group(1), m.group(2)
            ks = defs.get(n, [])
            pick = [x for x in ks if (x > k if d == "f" else x <= k)]
            target = (pick[0] if d == "f" else pick[-1]) if pick else -1
            return f"N{n}_{target}"
        line = re.sub(r"\b(\d+)([fb])\b", ref, line)
        line = re.sub(r"^\s*(\d+):", f"N\\1_{k}:", line)
        out.append(line)
    return out


def convert(path: Path) -> list[Test]:
    text = path.read_text()
    defines = _defines(text)
    maps = _maps(text, defines)
    tests = []
    for m in re.finditer(r"((?:^(?:SEC|__\w+)\b.*\n)+)__naked\s+void\s+(\w+)\s*\(([^)]*)\)\s*\{",
                         text, re.M):
        head, name = m.group(1), m.group(2)
        end = text.find("\n}", m.end())
        body = text[m.end():end]
        if "__auxiliary" in head or not re.search(r"^SEC\(", head, re.M):
            continue
        accept = not re.search(r"__failure\b(?!_unpriv)", head)
        t = Test(path.name, name, accept)
        tests.append(t)
        t.skip = ENVIRONMENT.get(f"{path.name}:{name}")
        if t.skip is None and re.search(r"__description\(\"[^\"]*return code", head):
            t.skip = "return-code range of a program type"
        if t.skip is None:
            t.skip = _prepare(t, head, body, defines, maps)
    return tests


def _prepare(t: Test, head: str, body: str, defines: dict[str, int],
             maps: dict[str, str | None]) -> str | None:
    got = _asm_strings(body)
    if got is None:
        return "asm built with macros"
    asm, rest = got
    ops = _operands(rest)
    if re.search(r"\b(?:struct __sk_buff|xdp_md|__sk_buff|offsetof|bpf_sock|bpf_sysctl|"
                 r"sk_msg_md|bpf_perf_event)", rest):
        return "context layout"
    asm = re.sub(r"/\*.*?\*/", "", asm, flags=re.S)
    asm = asm.replace("\\n", "\n").replace("\\t", " ").replace("\\", "")
    needed_maps: list[str] = []

    def operand(m: re.Match[str]) -> str:
        name = m.group(1)
        kind, arg = ops.get(name, ("", ""))
        if kind == "__imm":
            if name.startswith("bpf_"):
                if name not in OUR_HELPERS:
                    raise Skip("helper we lack")
                return name.removeprefix("bpf_")
            raise Skip("kfunc")
        if kind == "__imm_addr":
            if name not in maps:
                raise Skip("global variable or function address")
            if maps[name] is None:
                raise Skip("map type we lack")
            if maps[name] == FLAGS:
                raise Skip("map flags we lack")
            needed_maps.append(name)
            return f"map[{name}]"
        if kind == "__imm_const":
            expr = arg
            for k, v in defines.items():
                expr = re.sub(rf"\b{k}\b", str(v), expr)
            if not re.fullmatch(r"[-+*/()<>|&~ 0-9xXa-fA-FuUlL]+", expr):
                raise Skip("context layout" if "offsetof" in arg or "sizeof" in arg
                           else "constant we cannot evaluate")
            try:
                value = eval(re.sub(r"(?<=[0-9a-fA-F])[uUlL]+\b", "", expr))  # noqa: S307
            except Exception:  # noqa: BLE001
                raise Skip("constant we cannot evaluate") from None
            return str(int(value))
        if kind == "__imm_insn":
            raise Skip("raw instruction words")
        raise Skip("kfunc or address operand")

    try:
        asm = re.sub(r"%\[(\w+)\]", operand, asm)
    except Skip as s:
        return str(s)
    if re.search(r"call\s+[a-zA-Z_]\w*", asm):
        for callee in re.findall(r"call\s+([a-zA-Z_]\w*)", asm):
            if f"bpf_{callee}" not in OUR_HELPERS:
                return "subprogram in a separate function"
    asm = re.sub(r"(?<=\w)%=", "", asm)  # the unique suffix of a label
    asm = asm.replace("%%", "%")
    asm = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)U?LL\b", r"\1", asm)
    lines = [s.strip() for part in asm.split("\n") for s in part.split(";")]
    lines = [re.sub(r"^(r\d+\s*=\s*)(-?0x[0-9a-fA-F]+|-?\d+)$", _wide_mov, s)
             for s in lines if s]
    lines = [re.sub(r"^(\w+):\s*(\S.*)$", r"\1:\n\2", s) for s in lines]
    lines = _labels("\n".join(lines).split("\n"))
    t.maps = sorted(set(needed_maps))
    t.asm = "\n".join([maps[m] for m in t.maps] + lines) + "\n"  # type: ignore[misc]
    return None


def _wide_mov(m: re.Match[str]) -> str:
    """``r1 = 0xffffffffffffff00``: LLVM's mov with a sign-extended 32-bit
    immediate when the value is one, else a lddw."""
    value = int(m.group(2), 0) & ((1 << 64) - 1)
    signed = value - (1 << 64) if value >> 63 else value
    if -(1 << 31) <= signed < (1 << 31):
        return f"{m.group(1)}{signed}"
    if value < 1 << 32:  # LLVM keeps the low 32 bits, which the mov sign-extends
        return f"{m.group(1)}{value - (1 << 32) if value >> 31 else value}"
    return f"{m.group(1)}{m.group(2)} ll"


class Skip(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("progs", type=Path, help="tools/testing/selftests/bpf/progs of a Linux tree")
    ap.add_argument("-v", "--verbose", action="store_true", help="show each disagreement's reason")
    ap.add_argument("--list", action="store_true", help="list every disagreement")
    args = ap.parse_args(argv)
    tests: list[Test] = []
    for path in sorted(args.progs.glob("verifier_*.c")):
        tests += convert(path)
    skips: Counter[str] = Counter()
    agree = 0
    ran = 0
    false_rejects: list[tuple[Test, str]] = []
    false_accepts: list[Test] = []
    for t in tests:
        if t.skip is None:
            try:
                program = assemble(t.asm or "", f"{t.file}:{t.name}.s", helpers=HELPERS)
            except BpfvmError as exc:
                t.skip = "syntax our assembler does not take"
                if args.verbose:
                    print(f"  asm {t.file}:{t.name}: {str(exc).splitlines()[0]}")
        if t.skip is not None:
            skips[t.skip] += 1
            continue
        ran += 1
        verdict = verify(program, None, ctx_size=CTX_SIZE, helpers=HELPERS)
        if verdict.accepted == t.accept:
            agree += 1
        elif t.accept:
            d = verdict.diagnostics[0]
            false_rejects.append((t, f"pc {d.pc}: {d.message}"))
        else:
            false_accepts.append(t)
    print(f"{len(tests)} test programs in {args.progs}")
    print(f"skipped {sum(skips.values())}:")
    for reason, n in skips.most_common():
        print(f"  {n:5d}  {reason}")
    print(f"ran {ran}: agree {agree} ({100 * agree / max(ran, 1):.1f} %); kernel accepts, we "
          f"reject: {len(false_rejects)}; kernel rejects, we accept: {len(false_accepts)}")
    if args.list or args.verbose:
        print("kernel-accepted programs we reject:")
        for t, why in false_rejects:
            print(f"  {t.file}:{t.name}: {why}")
        print("kernel-rejected programs we accept:")
        for t in false_accepts:
            print(f"  {t.file}:{t.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
