"""The one way to turn a Program into a runnable engine.

:func:`load` checks the bytecode, runs the verifier for the program's hook
(or the generic ``mem`` type with a context of ``ctx_size`` bytes), and
builds the chosen engine.  Skipping verification is explicit
(``verify=False``) and meant for ISA test vectors, never for policies the MM
core runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bpfvm.errors import BpfvmError
from bpfvm.helpers import HelperTable
from bpfvm.hookspec import HookSpec
from bpfvm.isa.insn import validate
from bpfvm.program import Program

ENGINES = ("interp", "jit")


class Rejected(BpfvmError):
    """The verifier rejected the program; ``verdict`` holds the details."""

    exit_code = 1

    def __init__(self, verdict: Any) -> None:
        lines = [str(d) for d in verdict.diagnostics] or ["rejected"]
        super().__init__("verifier rejected the program:\n" + "\n".join(lines))
        self.verdict = verdict


@dataclass
class Loaded:
    """An engine plus the verifier's verdict (None when not verified)."""

    engine: Any
    verdict: Any | None


def default_helpers() -> HelperTable:
    from mmcore.hooks.helpers import policy_helpers

    return policy_helpers()


def make_engine(program: Program, engine: str, helpers: HelperTable, *, maps: list | None = None,
                env: Any = None, checked: bool = False) -> Any:
    """Build an engine without verifying (the caller has, or chose not to)."""
    if engine == "interp":
        from bpfvm.interp.interpreter import Interpreter

        return Interpreter(program, helpers, maps=maps, env=env)
    if engine == "jit":
        from bpfvm.jit.engine import Jit

        return Jit(program, helpers, maps=maps, env=env, checked=checked)
    raise BpfvmError(f"unknown engine '{engine}' (expected one of {', '.join(ENGINES)})")


def load(program: Program, *, engine: str = "interp", helpers: HelperTable | None = None,
         hook: HookSpec | None = None, ctx_size: int | None = None,
         objects: dict[str, int] | None = None, verify: bool = True, maps: list | None = None,
         env: Any = None, checked: bool = False) -> Loaded:
    """Validate, verify and build an engine for ``program``.

    Raises :class:`~bpfvm.errors.BytecodeErrors` for malformed bytecode and
    :class:`Rejected` when the verifier says no.
    """
    helpers = helpers if helpers is not None else default_helpers()
    validate(program.insns, helpers)
    verdict = None
    if verify:
        from verifier import verify as run_verifier

        verdict = run_verifier(program, hook, ctx_size=ctx_size, helpers=helpers,
                               objects=objects)
        if not verdict.accepted:
            raise Rejected(verdict)
    return Loaded(make_engine(program, engine, helpers, maps=maps, env=env, checked=checked),
                  verdict)
