"""The verifier's fast paths give what the general algorithm gives.

A program of one function without loops is analysed in one pass in rank
order (``Analyzer._acyclic``) instead of through the heap worklist
(``Analyzer.worklist``).  Here both run on generated programs, the
verifier's corpus and hand-written edge cases, and every result must be
identical: verdict, diagnostics (with their state text), stats, facts,
and the level-2 log, which shows every state kept apart at a pc.
"""

from __future__ import annotations

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.fuzz.generate import generate
from bpfvm.stdhelpers import standard_helpers
from tests.conftest import DATA
from verifier import analysis, verify
from verifier.report import Verdict

HELPERS = standard_helpers()
CORPUS = DATA / "verifier"

EDGE_CASES = {  # one function, no loop: joins, infeasible edges, budget, rejections
    "diamond": "r0 = 0\nif r1 > 5 goto +2\nr0 = 1\ngoto +1\nr0 = 2\nexit\n",
    "both-edges-same-pc": "r0 = 0\nr2 = *(u8 *)(r1 + 0)\nif r2 > 7 goto +0\nr0 = r2\nexit\n",
    "dead-branch": "r0 = 3\nif r0 > 5 goto +1\nexit\nr0 = *(u64 *)(r10 - 8)\nexit\n",
    "uninit-read": "r0 = r3\nexit\n",
    "join-of-spills": ("r2 = *(u8 *)(r1 + 0)\n*(u64 *)(r10 - 8) = r2\nif r2 > 3 goto +2\n"
                       "*(u64 *)(r10 - 8) = r1\ngoto +0\nr0 = *(u64 *)(r10 - 8)\nr0 = 0\n"
                       "exit\n"),
    # states kept apart at a join point: a pointer or a scalar; a pointer to the
    # context, to the stack or a scalar (one path's read is not valid)
    "ptr-or-scalar": ("r6 = *(u8 *)(r1 + 0)\nr2 = r1\nif r6 > 3 goto +1\nr2 = 7\n"
                      "if r6 > 3 goto +1\nr2 += 1\nr0 = *(u8 *)(r2 + 0)\nexit\n"),
    "three-kinds": ("*(u64 *)(r10 - 8) = 0\nr6 = *(u8 *)(r1 + 0)\nr3 = r1\n"
                   "if r6 == 1 goto +7\nr3 = r10\nr3 += -8\nif r6 == 2 goto +4\nr3 = 5\n"
                   "if r6 == 3 goto +2\nr3 = 0\nr0 = *(u8 *)(r3 + 0)\nexit\n"),
}
SPLIT = ("ptr-or-scalar", "three-kinds")  # cases whose analysis keeps several states at a pc


def _canon(v: Verdict) -> tuple:
    facts = None
    if v.facts is not None:
        f = v.facts
        facts = (f.max_insns, sorted(f.loops.items()), sorted(f.memory.items()),
                 sorted((pc, tuple((int(x.kind), x.num.key() if x.num else None, repr(x.obj),
                                    x.null, x.id) for x in regs))
                        for pc, regs in f.regs.items()))
    diags = [(d.pc, d.message, d.state, d.insn) for d in v.diagnostics]
    stats = sorted((k, repr(x)) for k, x in v.stats.items() if k != "seconds")
    return v.accepted, diags, stats, facts, v.log


def _both(monkeypatch: pytest.MonkeyPatch, program, **kw) -> tuple[tuple, tuple]:
    fast = _canon(verify(program, helpers=HELPERS, log_level=2, **kw))
    with monkeypatch.context() as mp:
        mp.setattr(analysis.Analyzer, "run", analysis.Analyzer.worklist)
        general = _canon(verify(program, helpers=HELPERS, log_level=2, **kw))
    return fast, general


@pytest.mark.parametrize("seed", range(60))
def test_generated(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    case = generate(seed)
    t = case.target
    fast, general = _both(monkeypatch, case.program, hook=t.hook, ctx_size=t.ctx_size,
                          objects=t.object_sizes() if t.objects else None)
    assert fast == general


@pytest.mark.parametrize("name", SPLIT)
def test_edge_cases_keep_states_apart(name: str) -> None:
    program = assemble(EDGE_CASES[name], f"{name}.s")
    v = verify(program, helpers=HELPERS, ctx_size=8)
    assert v.stats["states"] > v.stats["nodes"]


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    program = assemble(EDGE_CASES[name], f"{name}.s")
    fast, general = _both(monkeypatch, program, ctx_size=8)
    assert fast == general
    fast, general = _both(monkeypatch, program, ctx_size=8, budget=3)
    assert fast == general


def test_corpus_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = []
    for path in sorted(CORPUS.glob("*.cases")):
        current: list[str] = []
        for line in path.read_text().splitlines():
            if line.startswith("## case:"):
                texts.append(current)
                current = []
            elif not line.startswith("## "):
                current.append(line)
        texts.append(current)
    checked = 0
    for lines in texts:
        if not any(line.strip() for line in lines):
            continue
        try:
            program = assemble("\n".join(lines) + "\n", "case.s")
        except Exception:  # a case written for a hook's context: skipped here
            continue
        fast, general = _both(monkeypatch, program, ctx_size=64)
        assert fast == general
        checked += 1
    assert checked > 100
