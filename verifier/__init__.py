"""The static verifier: proves a program safe to run before any engine does.

``verify(program, hook, ctx_size=..., helpers=...) -> Verdict``.  A program
it accepts cannot touch memory it does not own, read what was never
written, leak a pointer, or run more than ``insn_limit`` instructions
(default :data:`INSN_LIMIT`, an engine's default budget).  Layers:
:mod:`verifier.cfg` (static graph), the domains (:mod:`verifier.domains`: tnum,
intervals, arithmetic, comparisons, values, state), the transfer functions
(:mod:`verifier.transfer`, :mod:`verifier.memory`, :mod:`verifier.calls`),
the checker (:mod:`verifier.checks`), the fixpoint (:mod:`verifier.analysis`),
termination (:mod:`verifier.loops`), the instruction bound
(:mod:`verifier.cost`) and the report (:mod:`verifier.report`).
"""

from verifier.api import VISIT_BUDGET, verify
from verifier.cost import INSN_LIMIT
from verifier.report import Diagnostic, Facts, Verdict

__all__ = ["verify", "Verdict", "Diagnostic", "Facts", "VISIT_BUDGET", "INSN_LIMIT"]
