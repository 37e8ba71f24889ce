"""Loading a scenario's ``[[attach]]`` programs into engines for an MM.

Each entry's program is found (relative to the scenario file, else among
the built-in programs of the ``programs`` package), read by the loader
(assembly with the policy helper table, standard + MM helpers; a BPF
object; or C, compiled against the ``bpfvm.h`` of the hook and helper
records), checked to be written for the hook it is attached to, verified
against that hook's record and built into the chosen engine with an
:class:`~mmcore.hooks.host.MmEnv` bound to the MM.  Every failure is an
:class:`AttachError` reading ``file: attach[i]: ...`` with the loader's or
verifier's own message; a verifier rejection exits
with 1 (the program is at fault), anything else with 2.

This module does not call engines: :mod:`mmcore.hooks.dispatch` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfvm.errors import BpfvmError
from bpfvm.load import Rejected, load, read_program
from bpfvm.program import Program
from mmcore.errors import ScenarioError
from mmcore.hooks.host import MmEnv, policy_helpers
from mmcore.hooks.specs import HOOKS, canonical
from mmcore.scenario.schema import Attach, Scenario

if TYPE_CHECKING:
    from mmcore.mm import MM

DEFAULT_ENGINE = "auto"  # the interpreter, then the JIT once a program has run often


class AttachError(ScenarioError):
    """A program of a scenario could not be loaded or was rejected."""

    def __init__(self, file: str, index: int, message: str, exit_code: int = 2) -> None:
        super().__init__(file, f"attach[{index}]", message)
        self.exit_code = exit_code


@dataclass
class Attached:
    """One loaded program: the hook's record name, the engine, the verdict."""

    hook: str
    path: Path
    engine_name: str
    engine: Any
    verdict: Any


def builtin_programs() -> Path:
    return Path(str(resources.files("programs")))


def program_path(sc: Scenario, program: str) -> Path:
    """Where an attach entry's program is: relative to the scenario file,
    else a built-in program of that name; the first candidate if neither exists."""
    p = Path(program)
    candidates = []
    if p.is_absolute():
        candidates.append(p)
    else:
        if not sc.file.startswith("<"):
            candidates.append(Path(sc.file).resolve().parent / p)
        candidates.append(builtin_programs() / p)
    for c in candidates:
        if c.is_file():
            return c
    return candidates[0]


def read_attached(sc: Scenario, index: int, a: Attach) -> Program:
    """The program of ``sc.attach[index]``, read (assembled) and checked to be
    written for the hook it is attached to; not verified yet."""
    hook = canonical(a.hook)
    assert hook is not None  # the scenario parser checked the name
    path = program_path(sc, a.program)
    if not path.is_file():
        raise AttachError(sc.file, index, f"program {a.program}: no such file")
    try:
        program = read_program(path, policy_helpers(), section=hook, hooks=HOOKS)
    except BpfvmError as exc:
        raise AttachError(sc.file, index, str(exc), exit_code=exc.exit_code) from None
    if program.hook is not None and canonical(program.hook) != hook:
        raise AttachError(sc.file, index, f"{path.name} is written for hook "
                          f"'{program.hook}', attached to '{hook}'")
    return program


def verified_programs(sc: Scenario) -> tuple[Program, ...]:
    """Every ``[[attach]]`` program of ``sc``, read and verified against its
    hook without an MM: what can travel to another process or machine and
    be attached there by :func:`attach_all` (which verifies again)."""
    helpers = policy_helpers()
    out = []
    for i, a in enumerate(sc.attach):
        program = read_attached(sc, i, a)
        hook = canonical(a.hook)
        assert hook is not None
        try:
            load(program, engine="interp", helpers=helpers, hook=HOOKS[hook])
        except Rejected as exc:
            raise AttachError(sc.file, i, f"{program.name}: {exc}", exit_code=1) from None
        except BpfvmError as exc:
            raise AttachError(sc.file, i, str(exc), exit_code=exc.exit_code) from None
        out.append(program)
    return tuple(out)


def load_attached(sc: Scenario, index: int, a: Attach, mm: MM,
                  engine: str | None = None, program: Program | None = None) -> Attached:
    """Assemble, verify and build the engine of ``sc.attach[index]`` for ``mm``.
    ``engine`` overrides the entry's own choice; ``program`` (already read,
    e.g. shipped from another machine) replaces reading the entry's file."""
    hook = canonical(a.hook)
    assert hook is not None  # the scenario parser checked the name
    spec = HOOKS[hook]
    helpers = policy_helpers()
    chosen = engine or a.engine or DEFAULT_ENGINE
    if program is None:
        program = read_attached(sc, index, a)
        path = program_path(sc, a.program)
    else:
        path = Path(a.program)
    try:
        env = MmEnv(mm, seed=sc.seed)
        loaded = load(program, engine=chosen, helpers=helpers, hook=spec, env=env)
    except Rejected as exc:
        raise AttachError(sc.file, index, f"{path.name}: {exc}", exit_code=1) from None
    except BpfvmError as exc:
        raise AttachError(sc.file, index, str(exc), exit_code=exc.exit_code) from None
    return Attached(hook, path, chosen, loaded.engine, loaded.verdict)


def attach_all(sc: Scenario, mm: MM, engine: str | None = None,
               programs: Sequence[Program] | None = None) -> list[Attached]:
    """Load every ``[[attach]]`` entry of ``sc`` and attach it to ``mm``'s hooks;
    ``programs`` (one per entry, from :func:`verified_programs`) replaces
    reading the entries' files."""
    if programs is not None and len(programs) != len(sc.attach):
        raise ValueError(f"{len(programs)} programs for {len(sc.attach)} attach entries")
    out = []
    for i, a in enumerate(sc.attach):
        att = load_attached(sc, i, a, mm, engine, None if programs is None else programs[i])
        mm.hooks.attach(att.hook, att.engine)
        out.append(att)
    return out
