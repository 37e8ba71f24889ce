"""The static control-flow graph: functions, edges, reachability and loops.

:func:`build` decodes each slot's spec once, splits the program into
functions (the entry and every local-call target, as the kernel's
subprograms), lists each instruction's successors inside its function, and
finds what the static checks reject: control leaving a function, statically
unreachable instructions, irreducible loops.  It also finds each function's
loops (head, back edges, body) and a reverse-postorder rank used to order
the analysis.  Nothing here tracks values; everything is iterative (no
recursion over the graph).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bpfvm import isa
from bpfvm.isa.insn import Insn


@dataclass
class Loop:
    head: int
    back: list[int]  # sources of back edges
    body: set[int]
    exits: list[tuple[int, int]]  # (pc in body, successor outside)


@dataclass
class Code:
    insns: list[Insn]
    specs: list[isa.OpSpec | None]  # None for lddw second halves
    succ: list[list[int]]  # intra-function successors (conditional: [fall, taken], or
    # [next] when both are the next pc)
    func_of: list[int]  # entry pc of each pc's function
    entries: list[int]
    rank: list[int]  # global reverse-postorder rank
    loops: dict[int, Loop] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)  # the reached pcs, by rank
    errors: list[tuple[int, str]] = field(default_factory=list)
    constants: set[int] = field(default_factory=set)


_CONSTANT_KINDS = frozenset({isa.Kind.JCOND, isa.Kind.ALU, isa.Kind.MOV})
# read once: a member lookup on an Enum class is slow
_LDDW, _CALL_LOCAL, _EXIT, _JA, _JCOND = (isa.Kind.LDDW, isa.Kind.CALL_LOCAL, isa.Kind.EXIT,
                                          isa.Kind.JA, isa.Kind.JCOND)
_JMP = int(isa.Cls.JMP)


def build(insns: list[Insn]) -> Code:
    n = len(insns)
    specs: list[isa.OpSpec | None] = [None] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    errors: list[tuple[int, str]] = []
    pc = 0
    entries = {0}
    constants: set[int] = set()
    lookup = isa.lookup
    lddw, call_local, kinds_imm = _LDDW, _CALL_LOCAL, _CONSTANT_KINDS
    exit_, ja, jcond = _EXIT, _JA, _JCOND
    # one pass: specs, entries, constants, and the successors as if the
    # program were one function (redone below when it is not)
    while pc < n:
        opcode, _dst, src, off, imm = insns[pc]
        spec = lookup(opcode, src, off, imm)  # Insn.spec, without the property call
        specs[pc] = spec
        if spec is None:
            pc += 1
            continue
        kind = spec.kind
        if kind is call_local:
            entries.add(pc + 1 + imm)
        elif kind in kinds_imm and "imm" in spec.uses:
            constants.add(imm)
        step = 2 if kind is lddw else 1
        if kind is jcond:
            taken = pc + 1 + off
            for t in ((pc + 1,) if taken == pc + 1 else (pc + 1, taken)):
                if t >= n:
                    errors.append((pc, "control flow falls off the end of the program"))
                else:
                    succ[pc].append(t)
        elif kind is not exit_:  # one successor: the jump target (a JMP-class ja jumps by
            # off, gotol by imm), or the next slot
            t = pc + 1 + (off if opcode & 0x07 == _JMP else imm) if kind is ja else pc + step
            if t >= n:
                errors.append((pc, "control flow falls off the end of the program"))
            else:
                succ[pc] = [t]
        pc += step
    order = sorted(e for e in entries if 0 <= e < n)
    if len(order) == 1:
        code = Code(insns, specs, succ, [0] * n, order, [0] * n, errors=errors,
                    constants=constants)
    else:
        code = _functions(insns, specs, order, constants)
    rank = 0
    seen: dict[int, dict[int, int]] = {}  # function entry -> the pcs its search reached
    for e in order:
        rank, seen[e] = _loops(code, e, rank)
    _reachability(code, seen)
    return code


def _functions(insns: list[Insn], specs: list[isa.OpSpec | None], order: list[int],
               constants: set[int]) -> Code:
    """The successors of a program of several functions: control must stay
    inside the function it is in."""
    n = len(insns)
    func_of: list[int] = []
    for i, e in enumerate(order):
        end = order[i + 1] if i + 1 < len(order) else n
        func_of += [e] * (end - e)
    func_of[:0] = [0] * (n - len(func_of))
    succ: list[list[int]] = [[] for _ in range(n)]
    code = Code(insns, specs, succ, func_of, order, [0] * n, constants=constants)
    errors = code.errors
    exit_, ja, jcond = _EXIT, _JA, _JCOND
    for pc, spec in enumerate(specs):
        if spec is None:
            continue
        kind = spec.kind
        if kind is exit_:
            continue
        if kind is jcond:
            taken = pc + 1 + insns[pc][3]
            targets: tuple[int, ...] = (pc + 1,) if taken == pc + 1 else (pc + 1, taken)
        elif kind is ja:  # a JMP-class ja jumps by off, gotol (JMP32) by imm
            targets = (pc + 1 + insns[pc][3 if spec.opcode & 0x07 == _JMP else 4],)
        else:
            targets = (pc + (2 if kind is _LDDW else 1),)
        here = func_of[pc]
        for t in targets:
            if t >= n:
                errors.append((pc, "control flow falls off the end of the program"))
            elif func_of[t] != here:
                jumped = kind is ja or (kind is jcond and t != pc + 1)
                what = "jumps into" if jumped else "falls through into"
                errors.append((pc, f"control flow {what} the function at pc {func_of[t]}"))
            else:
                succ[pc].append(t)
    return code


def _reachability(code: Code, seen: dict[int, dict[int, int]]) -> None:
    """Unreachable instructions: outside every function reachable from pc 0
    (through local calls), or outside what its function's entry reaches."""
    if len(code.entries) == 1:  # one function: what its entry reaches
        reached = seen.get(0, {})
        if len(reached) == len(code.specs) - code.specs.count(None):
            return  # every instruction
        reachable = set(reached)
        todo = []
    else:
        reachable = set()
        todo = [0] if 0 in seen else []
    done = set(todo)
    while todo:
        pcs = seen[todo.pop()]
        reachable.update(pcs)
        for pc in pcs:
            spec = code.specs[pc]
            if spec is not None and spec.kind is _CALL_LOCAL:
                target = pc + 1 + code.insns[pc].imm
                if target not in done:
                    done.add(target)
                    todo.append(target)
    prev_dead = False
    for pc, spec in enumerate(code.specs):
        if spec is None:
            continue
        dead = pc not in reachable
        if dead and not prev_dead:
            code.errors.append((pc, "unreachable instruction"))
        prev_dead = dead


def _loops(code: Code, entry: int, rank: int) -> tuple[int, dict[int, int]]:
    """Depth-first search of one function: postorder, back edges, loops; the
    next free rank and the pcs reached."""
    post: list[int] = []
    back: list[tuple[int, int]] = []
    state: dict[int, int] = {entry: 1}  # 1 on stack, 2 done
    succ = code.succ
    stack = [(entry, iter(succ[entry]))]
    get, push, pop, done = state.get, stack.append, stack.pop, post.append
    while stack:
        node, it = stack[-1]
        for s in it:
            st = get(s)
            if st is None:
                state[s] = 1
                push((s, iter(succ[s])))
                break
            if st == 1:
                back.append((node, s))
        else:
            pop()
            state[node] = 2
            done(node)
    rpo = post[::-1]
    if not back:  # no loop: the reverse postorder is the order
        for p in rpo:
            code.rank[p] = rank
            rank += 1
        code.order += rpo
        return rank, state
    preds = _preds(code, rpo)
    idom = _dominators(rpo, preds)
    for src, head in back:
        if not _dominates(idom, head, src):
            code.errors.append((head, f"irreducible loop: pc {head} is entered from outside "
                                      f"the loop (jump at pc {src})"))
            continue
        loop = code.loops.get(head) or Loop(head, [], {head}, [])
        code.loops[head] = loop
        loop.back.append(src)
        todo = [src]
        while todo:
            p = todo.pop()
            if p not in loop.body:
                loop.body.add(p)
                todo.extend(preds.get(p, ()))
    mine = [loop for loop in code.loops.values() if code.func_of[loop.head] == entry]
    for loop in mine:
        loop.exits = [(p, s) for p in sorted(loop.body) for s in code.succ[p]
                      if s not in loop.body]
    wto = _weak_topological(rpo, mine)
    for p in wto:
        code.rank[p] = rank
        rank += 1
    code.order += wto
    return rank, state


def _weak_topological(rpo: list[int], loops: list[Loop]) -> list[int]:
    """``rpo`` reordered so that every loop's body follows its head without
    a gap (a weak topological order): the analysis then finishes a loop
    before it visits what comes after it.  A node's key is the RPO index of
    each enclosing loop's head, outermost first, then its own."""
    index = {p: i for i, p in enumerate(rpo)}
    heads: dict[int, list[Loop]] = {}
    for loop in sorted(loops, key=lambda lp: -len(lp.body)):
        for p in loop.body:
            heads.setdefault(p, []).append(loop)
    return sorted(rpo, key=lambda p: tuple(index[lp.head] for lp in heads.get(p, ()))
                  + (index[p],))


def _preds(code: Code, nodes: list[int]) -> dict[int, list[int]]:
    preds: dict[int, list[int]] = {}
    for p in nodes:
        for s in code.succ[p]:
            preds.setdefault(s, []).append(p)
    return preds


def _dominators(rpo: list[int], preds: dict[int, list[int]]) -> dict[int, int]:
    """Immediate dominators (Cooper, Harvey and Kennedy)."""
    index = {p: i for i, p in enumerate(rpo)}
    idom = {rpo[0]: rpo[0]} if rpo else {}
    changed = True
    while changed:
        changed = False
        for b in rpo[1:]:
            new = None
            for p in preds.get(b, ()):
                if p not in idom:
                    continue
                if new is None:
                    new = p
                    continue
                a, c = p, new
                while a != c:
                    while index[a] > index[c]:
                        a = idom[a]
                    while index[c] > index[a]:
                        c = idom[c]
                new = a
            if new is not None and idom.get(b) != new:
                idom[b] = new
                changed = True
    return idom


def _dominates(idom: dict[int, int], a: int, b: int) -> bool:
    while True:
        if a == b:
            return True
        nxt = idom.get(b)
        if nxt is None or nxt == b:
            return False
        b = nxt
