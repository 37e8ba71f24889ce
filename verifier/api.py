"""``verify()``: the verifier's one entry point.

It checks the bytecode (:func:`bpfvm.isa.insn.check`) and map declarations,
builds the static graph (control-flow rejections), runs the abstract
interpretation, checks termination of every loop, bounds the instructions
one run may execute (:mod:`verifier.cost`) against ``insn_limit``, and
collects the diagnostics, facts and logs into a
:class:`~verifier.report.Verdict`.  Accepted means: safe, and finished
within ``insn_limit`` instructions on every run.  It never raises for
anything a program can contain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bpfvm import isa
from bpfvm.helpers import HelperTable
from bpfvm.hookspec import HookSpec
from bpfvm.isa.insn import Insn, check, frame_writes
from bpfvm.program import Program
from verifier.analysis import Analyzer, Fixpoint
from verifier.cfg import Code, build
from verifier.checks import Checker, Problem
from verifier.cost import INSN_LIMIT, Bound, heaviest_loop, instruction_bound
from verifier.domains.interval import Thresholds
from verifier.domains.state import State, initial
from verifier.domains.values import Obj, Val, const, pointer
from verifier.env import Env
from verifier.log import render_log
from verifier.loops import LoopVerdict, check_loops
from verifier.report import Diagnostic, Facts, Verdict, render_regs

VISIT_BUDGET = 400_000  # instruction visits the analysis may make before it gives up

# How a log or a diagnostic shows slot ``pc`` of ``insns``; the caller hands in
# the disassembler's (the verifier does not print assembly itself).
Formatter = Callable[[Sequence[Insn], int], str]


def raw_format(insns: Sequence[Insn], pc: int) -> str:
    """The fields of slot ``pc``, for callers that hand in no formatter."""
    i = insns[pc]
    spec = i.spec
    name = spec.key if spec is not None else f"op {i.opcode:#04x}"
    return f"{name} dst=r{i.dst} src=r{i.src} off={i.off} imm={i.imm}"


def _describe(state: State | None, regs: tuple[int, ...]) -> str:
    return render_regs(state, regs) if state is not None else ""


def verify(program: Program, hook: HookSpec | None = None, *, ctx_size: int | None = None,
           helpers: HelperTable, objects: dict[str, int] | None = None,
           budget: int = VISIT_BUDGET, insn_limit: int = INSN_LIMIT,
           log_level: int = 0, formatter: Formatter = raw_format,
           progress: Callable[[int, int], None] | None = None) -> Verdict:
    """Accept or reject ``program`` for ``hook`` (None: the generic ``mem``
    type with an r1 buffer of ``ctx_size`` bytes and r2 = its length).
    ``budget`` bounds the analysis's work (instruction visits);
    ``insn_limit`` the instructions one run of an accepted program may
    execute (by default an engine's default instruction budget);
    ``formatter`` shows an instruction in diagnostics and the log;
    ``progress(visits, bound)`` follows a long analysis (``bound``: for a
    program without loops or calls, its instruction count, times the
    states kept apart per pc if it has join points; else ``budget``)."""
    t0 = time.perf_counter()
    insns = program.insns

    def diag(pc: int, message: str, state: str = "") -> Diagnostic:
        loc = program.source[pc] if 0 <= pc < len(program.source) else None
        text = formatter(insns, pc) if 0 <= pc < len(insns) else ""
        return Diagnostic(pc, loc, message, state, text)

    errors, writes = _check(insns, helpers)
    if errors:
        return Verdict(False, [diag(e.pc, e.message) for e in errors], None,
                       {"stage": "bytecode"})
    for m in program.maps:
        if (why := m.problem()) is not None:
            return Verdict(False, [diag(0, f"map {m.name}: {why}")], None, {"stage": "maps"})
    code = build(insns)
    if code.errors:
        found = sorted(set(code.errors))
        return Verdict(False, [diag(pc, msg) for pc, msg in found], None, {"stage": "cfg"})
    if hook is None:
        size = ctx_size or 0
        ctx = Obj("buf", "ctx", size)
        regs: dict[int, Val] = {1: pointer(ctx), 2: const(size)}
    else:
        ctx = Obj("ctx", hook.name, hook.ctx_size)
        regs = {1: pointer(ctx)}
    regs[isa.FRAME_REG] = _FRAME
    # widening points (only loop heads widen: none are needed without a loop)
    th = Thresholds(set(code.constants) | {ctx.size}) if code.loops else _NO_WIDENING
    checker = Checker(_describe)
    env = Env(program, code, hook, ctx, helpers, program.maps, dict(objects or {}), th, checker)
    env.loop_th = _loop_thresholds(code, ctx.size)
    res = Analyzer(env, initial(regs), budget, progress).run()
    for node in res.states:  # a write to r10 is rejected where it may run
        if node[1] in writes and not res.exhausted:
            res.problems.setdefault(node, []).append(
                Problem(node[1], writes[node[1]], (isa.FRAME_REG,), ""))
    problems = _problems(res)
    loops = [] if res.exhausted else check_loops(code, res)
    diags = [diag(p.pc, p.message, p.state) for p in problems]
    blamed: set[int] = set()
    for lv in loops:
        if not lv.ok and lv.head not in blamed:
            blamed.add(lv.head)
            diags.append(diag(lv.head, f"loop at pc {lv.head}{_where(program, lv.head)} may "
                                       f"not terminate: {lv.reason}"))
    bound: Bound | None = None
    if not diags:
        bound = instruction_bound(code, list(res.states), loops)
        if bound.total > insn_limit:
            pc, message = _too_long(program, loops, bound, insn_limit)
            diags.append(diag(pc, message))
    diags.sort(key=lambda d: d.pc)
    facts = _facts(res, code, loops, bound) if not diags and bound is not None else None
    stats = {"insns": len(insns), "visits": res.visits, "nodes": len(res.states),
             "states": sum(len(group) for group in res.sets.values()),
             "loops": {lv.head: lv.reason for lv in loops},
             "max_insns": bound.total if bound is not None else None,
             "seconds": round(time.perf_counter() - t0, 6)}
    log = render_log(program, res, env, formatter, log_level)
    return Verdict(not diags, diags, facts, stats, log)


def _check(insns: list[Insn], helpers: HelperTable) -> tuple[list, dict[int, str]]:
    """The bytecode's problems, and the writes to r10 (valid instructions,
    which the analysis rejects where they may run) with their messages."""
    return check(insns, helpers), frame_writes(insns)


def _loop_thresholds(code: Code, ctx_size: int) -> dict[int, Thresholds]:
    """Widening points of each loop head: the constants its conditional
    jumps compare against (an immediate, or a constant moved anywhere into
    a compared register) and the context size, so that a counter jumps
    straight to its bound instead of climbing through unrelated constants."""
    if not code.loops:
        return {}
    moved: dict[int, set[int]] = {}  # register -> constants moved into it
    for p, spec in enumerate(code.specs):
        if spec is not None and spec.kind is isa.Kind.MOV and not spec.src_reg:
            moved.setdefault(code.insns[p].dst, set()).add(code.insns[p].imm)
    out: dict[int, Thresholds] = {}
    for head, loop in code.loops.items():
        consts = {ctx_size}
        for p in loop.body:
            spec = code.specs[p]
            if spec is None or spec.kind is not isa.Kind.JCOND:
                continue
            insn = code.insns[p]
            if spec.src_reg:
                consts |= moved.get(insn.dst, set()) | moved.get(insn.src, set())
            else:
                consts.add(insn.imm)
        out[head] = Thresholds(consts)
    return out


def _where(program: Program, pc: int) -> str:
    loc = program.source[pc] if 0 <= pc < len(program.source) else None
    return f" ({loc})" if loc else ""


def _too_long(program: Program, loops: list[LoopVerdict], bound: Bound,
              limit: int) -> tuple[int, str]:
    """The rejection of a run that may exceed ``limit`` instructions,
    blaming the loop whose head may be visited most often."""
    total = f"a run may execute {bound.total} instructions (limit {limit})"
    lv = heaviest_loop(loops, bound)
    if lv is None or lv.span is None or not lv.name:
        return 0, f"program too long: {total}"
    visits = bound.visits.get((lv.chain, lv.head), 0)
    per_entry = f" ({lv.trips} per entry)" if visits != lv.trips else ""
    called = f" in the call at pc {lv.chain[-1]}" if lv.chain else ""
    lo, hi, step = lv.span
    return lv.head, (f"loop at pc {lv.head}{_where(program, lv.head)}{called} may run "
                     f"{visits} times{per_entry}: {lv.name} is bounded only by [{lo}, {hi}] "
                     f"(step {step:+d}), so {total}")


def _problems(res: Fixpoint) -> list[Problem]:
    seen: dict[tuple[int, str], Problem] = {}
    for node in sorted(node for node, found in res.problems.items() if found):
        for p in res.problems[node]:
            seen.setdefault((p.pc, p.message), p)
    out = sorted(seen.values(), key=lambda p: p.pc)
    if res.exhausted:
        out.append(res.exhausted)
    return out


def _by_pc(res: Fixpoint, code: Code) -> dict[int, tuple[Val, ...]]:
    """The registers at each pc: joined over the call contexts and the
    states kept apart there."""
    regs: dict[int, tuple[Val, ...]] = {}
    for (_chain, pc), group in res.sets.items():
        for st in group:
            old = regs.get(pc)
            regs[pc] = st.regs if old is None else tuple(
                [a.join(b) for a, b in zip(old, st.regs, strict=True)])
    return regs


def _facts(res: Fixpoint, code: Code, loops: list[LoopVerdict], bound: Bound) -> Facts:
    facts = Facts(regs=_by_pc(res, code), max_insns=bound.total)
    reads: set[tuple[int, int] | None] = set()  # the context fields loads read
    for (_chain, pc), group in res.sets.items():  # each state kept apart: its object
        spec = code.specs[pc]
        if spec is None or spec.kind not in _MEMORY:
            continue
        insn = code.insns[pc]
        for st in group:
            base = st.reg(insn.src if spec.kind is _LDX else insn.dst)
            kind = base.obj.kind if base.obj is not None else "?"
            old = facts.memory.get(pc)
            facts.memory[pc] = kind if old in (None, kind) else "mixed"
            if kind == "ctx" and spec.kind is _LDX:
                reads.add(None if base.num is None or not base.num.is_const()
                          else (base.num.smin + insn.off, spec.width))
    for lv in loops:  # the largest trip bound over the call chains
        old_loop = facts.loops.get(lv.head)
        if old_loop is None or (old_loop[1] or 0) < (lv.trips or 0):
            facts.loops[lv.head] = (lv.reason, lv.trips)
    facts.ctx_reads = None if None in reads else frozenset(reads)  # type: ignore[arg-type]
    return facts


_MEMORY = frozenset({isa.Kind.LDX, isa.Kind.ST, isa.Kind.STX, isa.Kind.ATOMIC})
_LDX = isa.Kind.LDX  # read once: a member lookup on an Enum class is slow
_FRAME = pointer(Obj("stack", 0, 512))  # r10 on entry (values are never changed)
_NO_WIDENING = Thresholds()  # never changed: only loop heads widen, with their own points

