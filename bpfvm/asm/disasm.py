"""Print a program in either assembly syntax, and lint its bytecode.

:func:`disassemble` writes the directives (``.syntax``, ``.hook``,
``.map``) and one line per instruction; its output assembles back to the
same bytes, maps and hook.  Jump and call targets become labels (``L12``,
``fn30``) or, with ``labels=False`` or when a target cannot carry a label,
relative offsets (``+3``).  Helper calls show the helper's name when a
:class:`~bpfvm.helpers.HelperTable` knows it.  A slot no syntax can express
faithfully (unknown opcode, a field its opcode does not use, a register
beyond r10, a malformed lddw) is printed as
``.raw 0xWORD`` with the reason as a comment; :func:`lint` lists those
reasons, as uBPF's disassembler warns about unused fields.

The spelling of every operation comes from :mod:`bpfvm.asm.names`; this
module only formats.  It does not check control flow (see
:func:`bpfvm.isa.insn.check`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bpfvm import isa
from bpfvm.asm.names import is_fetch, kernel_func, layout
from bpfvm.helpers import HelperTable
from bpfvm.isa import Kind, OpSpec
from bpfvm.isa.bits import s64
from bpfvm.isa.insn import Insn, lddw_value, map_value_offset
from bpfvm.limits import format_size
from bpfvm.program import MapDef, Program

SYNTAXES = ("kernel", "conformance")


@dataclass
class _Ctx:
    """What formatting one instruction needs to know about the program."""

    syntax: str
    helpers: HelperTable | None
    maps: list[MapDef]
    labels: dict[int, str] = field(default_factory=dict)
    pc: int = 0


# ---- lint -------------------------------------------------------------------------
def _problem(insns: Sequence[Insn], pc: int) -> str | None:
    """Why slot ``pc`` cannot be printed as an instruction, or None."""
    insn = insns[pc]
    spec = insn.spec
    if spec is None:
        return f"unknown operation (opcode {insn.opcode:#04x})"
    matched = spec.match[0] if spec.match else None
    for name in ("dst", "src", "off", "imm"):
        value = getattr(insn, name)
        if name not in spec.uses and name != matched and value:
            return f"{spec.key}: {name} field is {value}, unused by this opcode"
    for name in ("dst", "src"):
        if name in spec.uses and getattr(insn, name) > isa.FRAME_REG:
            return f"{spec.key}: no register r{getattr(insn, name)} in {name}"
    if spec.kind is Kind.LDDW:
        if pc + 1 >= len(insns):
            return "truncated lddw: no second slot"
        nxt = insns[pc + 1]
        if nxt.opcode or nxt.dst or nxt.src or nxt.off:
            return "malformed lddw: its second slot must hold only imm"
    return None


def lint(insns: Sequence[Insn]) -> list[str]:
    """Warnings ``pc N: ...`` for slots set in ways their opcode does not use."""
    out = []
    pc = 0
    while pc < len(insns):
        problem = _problem(insns, pc)
        if problem:
            out.append(f"pc {pc}: {problem}")
            pc += 1
        else:
            pc += insns[pc].spec.slots  # type: ignore[union-attr]
    return out


# ---- operand text -------------------------------------------------------------------
def _num(value: int) -> str:
    return f"{value:#x}" if value >= 0x10000 else str(value)


def _target(ctx: _Ctx, rel: int) -> str:
    label = ctx.labels.get(ctx.pc + 1 + rel)
    return label if label is not None else f"{rel:+d}"


def _helper(ctx: _Ctx, imm: int) -> str:
    spec = ctx.helpers.get(imm) if ctx.helpers is not None else None
    return spec.name if spec is not None else str(imm)


def _mapref(ctx: _Ctx, kind: str, index: int, off: int) -> str:
    name = ctx.maps[index].name if 0 <= index < len(ctx.maps) else str(index)
    return f"{kind}[{name}]" + (f"+{off}" if off else "")


def _lddw_operand(ctx: _Ctx, spec: OpSpec, first: Insn, second: Insn) -> str:
    if first.src == isa.PSEUDO_IMM64:
        value = lddw_value(first, second)
        if ctx.syntax == "kernel":
            return str(s64(value))
        return _num(value)
    kind = "map" if first.src == isa.PSEUDO_MAP_FD else "map_value"
    return _mapref(ctx, kind, first.imm, map_value_offset(first, second))


# ---- conformance syntax -------------------------------------------------------------
def _conf_operand(ctx: _Ctx, shape: str, fld: str, insn: Insn) -> str:
    value = getattr(insn, fld)
    if shape == "reg":
        return f"%r{value}"
    if shape == "mem":
        return f"[%r{value}{insn.off:+d}]" if insn.off else f"[%r{value}]"
    if shape == "imm":
        return _num(value)
    if shape == "target":
        return _target(ctx, value)
    return _helper(ctx, value)


def _conf(ctx: _Ctx, spec: OpSpec, insn: Insn, nxt: Insn | None) -> str:
    if spec.kind is Kind.LDDW:
        assert nxt is not None
        return f"lddw %r{insn.dst}, {_lddw_operand(ctx, spec, insn, nxt)}"
    ops = ", ".join(_conf_operand(ctx, shape, fld, insn) for shape, fld in layout(spec))
    return f"{spec.conf} {ops}" if ops else spec.conf


# ---- kernel syntax -----------------------------------------------------------------
def _kreg(num: int, bits: int) -> str:
    return f"{'w' if bits == 32 else 'r'}{num}"


def _kaddr(reg: int, off: int) -> str:
    return f"r{reg} {'-' if off < 0 else '+'} {abs(off)}"


def _ksrc(spec: OpSpec, insn: Insn) -> str:
    return _kreg(insn.src, spec.width) if spec.src_reg else str(insn.imm)


def _k_alu(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    return f"{_kreg(insn.dst, spec.width)} {spec.kop} {_ksrc(spec, insn)}"


def _k_neg(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    d = _kreg(insn.dst, spec.width)
    return f"{d} = -{d}"


def _k_movsx(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    return f"{_kreg(insn.dst, spec.width)} = {spec.kop}{_kreg(insn.src, spec.width)}"


def _k_end(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    return f"r{insn.dst} = {spec.kop} r{insn.dst}"


def _k_jcond(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    return (f"if {_kreg(insn.dst, spec.width)} {spec.kop} {_ksrc(spec, insn)} "
            f"goto {_target(ctx, insn.off)}")


def _k_ja(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    return f"{spec.kop} {_target(ctx, insn.off if 'off' in spec.uses else insn.imm)}"


def _k_call(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    return f"call {_helper(ctx, insn.imm)}"


def _k_call_local(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    label = ctx.labels.get(ctx.pc + 1 + insn.imm)
    return f"call {label}" if label else f"call pc{insn.imm:+d}"


def _k_ldx(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    return f"r{insn.dst} = *({spec.kop} *)({_kaddr(insn.src, insn.off)})"


def _k_store(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    value = f"r{insn.src}" if spec.kind is Kind.STX else str(insn.imm)
    return f"*({spec.kop} *)({_kaddr(insn.dst, insn.off)}) = {value}"


def _k_atomic(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    ctype = isa.SIZE_CTYPE[spec.width]
    s = _kreg(insn.src, spec.width * 8)
    addr = _kaddr(insn.dst, insn.off)
    if not is_fetch(spec):
        return f"lock *({ctype} *)({addr}) {spec.kop} {s}"
    func = kernel_func(spec)
    if spec.op == "cmpxchg":
        r0 = _kreg(0, spec.width * 8)
        return f"{r0} = {func}({addr}, {r0}, {s})"
    if spec.op == "xchg":
        return f"{s} = {func}({addr}, {s})"
    return f"{s} = {func}(({ctype} *)({addr}), {s})"


def _k_ldpkt(ctx: _Ctx, spec: OpSpec, insn: Insn) -> str:
    if spec.kind is Kind.LDABS:
        where = str(insn.imm)
    else:
        where = _kaddr(insn.src, insn.imm) if insn.imm else f"r{insn.src}"
    return f"r0 = *({spec.kop} *)skb[{where}]"


_KERNEL: dict[Kind, Callable[[_Ctx, OpSpec, Insn], str]] = {
    Kind.ALU: _k_alu, Kind.MOV: _k_alu, Kind.NEG: _k_neg, Kind.MOVSX: _k_movsx,
    Kind.END: _k_end, Kind.JCOND: _k_jcond, Kind.JA: _k_ja, Kind.CALL: _k_call,
    Kind.CALL_LOCAL: _k_call_local, Kind.CALLX: lambda c, s, i: f"callx r{i.dst}",
    Kind.EXIT: lambda c, s, i: "exit", Kind.LDX: _k_ldx, Kind.ST: _k_store,
    Kind.STX: _k_store, Kind.ATOMIC: _k_atomic, Kind.LDABS: _k_ldpkt, Kind.LDIND: _k_ldpkt,
}


def _kernel(ctx: _Ctx, spec: OpSpec, insn: Insn, nxt: Insn | None) -> str:
    if spec.kind is Kind.LDDW:
        assert nxt is not None
        return f"r{insn.dst} = {_lddw_operand(ctx, spec, insn, nxt)} ll"
    return _KERNEL[spec.kind](ctx, spec, insn)


_PRINTERS = {"kernel": _kernel, "conformance": _conf}


# ---- whole programs ----------------------------------------------------------------
def _raw(insn: Insn) -> str:
    return f".raw {int.from_bytes(insn.encode(), 'little'):#018x}"


def _statements(insns: Sequence[Insn]) -> list[tuple[int, OpSpec | None]]:
    """(pc, spec) of every printed statement; spec None for raw slots."""
    out: list[tuple[int, OpSpec | None]] = []
    pc = 0
    while pc < len(insns):
        if _problem(insns, pc):
            out.append((pc, None))
            pc += 1
        else:
            spec = insns[pc].spec
            assert spec is not None
            out.append((pc, spec))
            pc += spec.slots
    return out


def _labels(insns: Sequence[Insn], stmts: list[tuple[int, OpSpec | None]]) -> dict[int, str]:
    starts = {pc for pc, _ in stmts} | {len(insns)}
    labels: dict[int, str] = {}
    for pc, spec in stmts:
        if spec is None:
            continue
        insn = insns[pc]
        if spec.kind is Kind.CALL_LOCAL:
            target = pc + 1 + insn.imm
            if target in starts:
                labels[target] = f"fn{target}"
        elif spec.kind in (Kind.JCOND, Kind.JA):
            target = pc + 1 + (insn.off if "off" in spec.uses else insn.imm)
            if target in starts:
                labels.setdefault(target, f"L{target}")
    return labels


def _header(program: Program, syntax: str) -> list[str]:
    lines = [f".syntax {syntax}"]
    if program.hook:
        lines.append(f".hook {program.hook}")
    for name, size in program.objects.items():
        lines.append(f".object {name} {format_size(size)}")
    for m in program.maps:
        lines.append(f".map {m.name} {m.kind} key={m.key_size} value={m.value_size} "
                     f"entries={m.max_entries}")
    return lines


def disassemble(program: Program | Sequence[Insn], syntax: str = "kernel",
                helpers: HelperTable | None = None, labels: bool = True) -> str:
    """The text of ``program`` in ``syntax``; it assembles back to the same bytes."""
    if syntax not in _PRINTERS:
        raise ValueError(f"unknown syntax '{syntax}' (expected {' or '.join(SYNTAXES)})")
    prog = program if isinstance(program, Program) else Program(list(program))
    insns = prog.insns
    stmts = _statements(insns)
    ctx = _Ctx(syntax, helpers, prog.maps, _labels(insns, stmts) if labels else {})
    print_one = _PRINTERS[syntax]
    lines = _header(prog, syntax)
    for pc, spec in stmts:
        if pc in ctx.labels:
            lines.append(f"{ctx.labels[pc]}:")
        ctx.pc = pc
        if spec is None:
            lines.append(f"    {_raw(insns[pc])}  # {_problem(insns, pc)}")
        else:
            nxt = insns[pc + 1] if spec.slots == 2 else None
            lines.append("    " + print_one(ctx, spec, insns[pc], nxt))
    if len(insns) in ctx.labels:
        lines.append(f"{ctx.labels[len(insns)]}:")
    return "\n".join(lines) + "\n"


def format_insn(insns: Sequence[Insn], pc: int, syntax: str = "kernel",
                helpers: HelperTable | None = None, maps: Sequence[MapDef] = ()) -> str:
    """One instruction's text (relative jump targets), e.g. for diagnostics."""
    problem = _problem(insns, pc)
    if problem:
        return f"{_raw(insns[pc])}  # {problem}"
    spec = insns[pc].spec
    assert spec is not None
    ctx = _Ctx(syntax, helpers, list(maps), pc=pc)
    nxt = insns[pc + 1] if spec.slots == 2 else None
    return _PRINTERS[syntax](ctx, spec, insns[pc], nxt)


def objdump(programs: Sequence[Program], filename: str) -> str:
    """``programs`` (the sections of one file) in llvm-objdump's ``-d`` layout:
    one ``Disassembly of section`` per program, each instruction as its slot
    number, its raw bytes (both slots of a ``lddw`` on one line) and its text,
    jumps as ``goto +N <symbol+0xOFFSET>``.  Helpers are called by number, as
    llvm-objdump prints them; maps by name (llvm-objdump shows a relocation)."""
    out = [f"\n{filename}:\tfile format elf64-bpf\n"]
    for prog in programs:
        section = prog.hook or ".text"
        symbol = prog.name.split(":")[-1] if prog.name and prog.name != "prog" else section
        out.append(f"Disassembly of section {section}:\n")
        out.append(f"{0:016x} <{symbol}>:")
        insns = prog.insns
        for pc, spec in _statements(insns):
            slots = spec.slots if spec is not None else 1
            raw = b"".join(i.encode() for i in insns[pc:pc + slots])
            text = format_insn(insns, pc, "kernel", None, prog.maps)
            if spec is not None and spec.kind in (Kind.JCOND, Kind.JA, Kind.CALL_LOCAL):
                insn = insns[pc]
                rel = insn.imm if spec.kind is Kind.CALL_LOCAL or "off" not in spec.uses \
                    else insn.off
                text += f" <{symbol}+0x{(pc + 1 + rel) * 8:x}>"
            out.append(f"{pc:8d}:\t{' '.join(f'{b:02x}' for b in raw)}\t{text}")
        out.append("")
    return "\n".join(out)
