"""The verifier's log, in the kernel's spirit (``log_level`` 1 and 2).

Level 1 lists every conditional jump with the outcomes the analysis found
possible ("both ways", "always taken", ...).  Level 2 adds, for every
instruction in program order and every call context that reaches it, the
register and stack state *after* the instruction: the transfer function
is applied once more to the instruction's final entry state (the one the
verdict rests on), to each of them where the analysis kept several apart
("state 1 of 2").  An instruction with one successor shows that state; a
conditional jump shows the state on each edge (``-> pc N: ...``, the
register compared narrowed on each side); an ``exit`` of the main function
has no successor and shows the state it returns in (``r0``).  The verdict's
own records are left as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bpfvm import isa
from bpfvm.isa.insn import Insn
from bpfvm.program import Program
from verifier.analysis import Fixpoint
from verifier.domains.state import State
from verifier.env import Env
from verifier.report import render_state
from verifier.transfer import TRANSFER

Formatter = Callable[[Sequence[Insn], int], str]


def render_log(program: Program, res: Fixpoint, env: Env, formatter: Formatter,
               level: int) -> list[str]:
    """The log lines for ``level`` (none at level 0)."""
    if level <= 0:
        return []
    lines: list[str] = []
    insns = program.insns
    states: dict[int, list[tuple[tuple[int, ...], list[State]]]] = {}
    for (chain, pc), group in sorted(res.sets.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        states.setdefault(pc, []).append((chain, group))
    for pc in sorted(states):
        text = formatter(insns, pc)
        where = program.where(pc)
        if level >= 2:
            for chain, group in states[pc]:
                for i, st in enumerate(group):
                    which = f" (state {i + 1} of {len(group)})" if len(group) > 1 else ""
                    lines.append(f"{where}: pc {pc}: {text}{which}    ; "
                                 f"{after(env, chain, pc, st)}")
        spec = env.code.specs[pc]
        if spec is not None and spec.kind is isa.Kind.JCOND:
            fall = taken = False
            for (chain, bpc, _part), (f, t) in env.branches.items():
                if bpc == pc and (chain, pc) in res.states:
                    fall, taken = fall or f, taken or t
            what = ("both ways" if fall and taken else "always taken" if taken
                    else "never taken" if fall else "never reached")
            lines.append(f"{where}: pc {pc}: {text}: {what}")
    return lines


def after(env: Env, chain: tuple[int, ...], pc: int, state: State) -> str:
    """The state after instruction ``pc`` entered with ``state`` in call
    context ``chain``, as a log shows it."""
    spec = env.code.specs[pc]
    if spec is None:
        return render_state(state)
    checker, branches = env.checker, dict(env.branches)
    saved = (checker.pc, checker.problems, env.chain)
    checker.pc, checker.problems, env.chain = pc, [], chain
    try:
        edges = TRANSFER[spec.kind](env, pc, env.code.insns[pc], spec, state)
    finally:
        checker.pc, checker.problems, env.chain = saved
        env.branches.clear()
        env.branches.update(branches)
    if not edges:  # the main function's exit (or nothing feasible follows)
        return render_state(state)
    if len(edges) == 1 and spec.kind is not isa.Kind.JCOND:
        return render_state(edges[0][2])
    return " | ".join(f"-> pc {target}: {render_state(out)}" for _kind, target, out in edges)
