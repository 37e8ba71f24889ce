"""The one way to turn a file or a Program into a runnable engine.

:func:`read_programs` reads every program of a file (assembly, raw
bytecode, a JSON object file, a clang-built BPF object or C compiled into
one); :func:`load` checks the bytecode, runs the
verifier for the program's hook (or the generic ``mem`` type with a context
of ``ctx_size`` bytes), and builds the chosen engine, an
:class:`~bpfvm.engine.Engine`.  The caller names the helper table a program
may call (the MM core passes its own); skipping verification is explicit
(``verify=False``) and meant for ISA test vectors, never for policies the MM
core runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bpfvm.asm.disasm import format_insn
from bpfvm.asm.sections import pick_section, split_sections
from bpfvm.engine import Engine, Tiered
from bpfvm.errors import BpfvmError, BytecodeError
from bpfvm.helpers import HelperTable
from bpfvm.hookspec import HookSpec
from bpfvm.interp.depend import LoadDepths
from bpfvm.isa.insn import Insn, validate
from bpfvm.limits import MAX_PROGRAM_FILE, read_bounded
from bpfvm.maps import Map
from bpfvm.program import Program
from bpfvm.vmenv import VmEnv
from verifier import Verdict
from verifier import verify as run_verifier

ENGINES = ("auto", "interp", "jit")  # auto: the interpreter, then the JIT (bpfvm.engine.Tiered)


class Rejected(BpfvmError):
    """The verifier rejected the program; ``verdict`` holds the details."""

    exit_code = 1

    def __init__(self, verdict: Verdict) -> None:
        lines = [str(d) for d in verdict.diagnostics] or ["rejected"]
        super().__init__("verifier rejected the program:\n" + "\n".join(lines))
        self.verdict = verdict


@dataclass
class Loaded:
    """An engine plus the verifier's verdict (None when not verified)."""

    engine: Engine
    verdict: Verdict | None


def read_bytes(path: str | Path, limit: int = MAX_PROGRAM_FILE, what: str = "file") -> bytes:
    """The bytes of a file, refused past ``limit`` (see :func:`bpfvm.limits.read_bounded`)."""
    return read_bounded(path, limit, what)


def read_text(path: str | Path, limit: int = MAX_PROGRAM_FILE) -> str:
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BpfvmError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def read_programs(path: str | Path, helpers: HelperTable, syntax: str | None = None,
                  hooks: Mapping[str, HookSpec] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> list[Program]:
    """Every program of a file: assembly (``.s``, one per ``.hook`` section),
    raw bytecode (``.bin``: plain instruction words), a JSON object file
    (``.json``), a BPF ELF object (``.o``, one per program section) or C
    (``.c``, compiled into a cached object first).  ``helpers`` resolves
    ``call NAME`` in assembly; C is compiled against the ``bpfvm.h`` made
    from ``hooks`` and ``helpers`` (so reading C needs ``hooks``).
    ``progress(lines done, lines)`` follows the assembly of a large file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".o":
        from bpfvm.asm.elf import load_object_file

        return load_object_file(path)
    if suffix == ".c":
        return _read_c(path, helpers, hooks)
    if suffix == ".bin":
        try:
            return [Program.load_bytes(read_bytes(path), name=path.stem)]
        except BytecodeError as exc:
            raise BpfvmError(f"{path}: {exc}") from None
    if suffix == ".json":
        text = read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BpfvmError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise BpfvmError(f"{path}: invalid object file: JSON nested too deeply") from None
        except ValueError:  # a number past Python's digit limit
            raise BpfvmError(f"{path}: invalid object file: a number has too many digits") \
                from None
        return [Program.from_json(data, str(path))]
    programs = split_sections(read_text(path), str(path), syntax=syntax, helpers=helpers,
                              progress=progress)
    if len(programs) == 1:
        programs[0].name = path.stem
    return programs


def read_program(path: str | Path, helpers: HelperTable, syntax: str | None = None,
                 section: str | None = None,
                 hooks: Mapping[str, HookSpec] | None = None) -> Program:
    """The program of a file, or of its ``.hook`` (or object) section ``section``."""
    return pick_section(read_programs(path, helpers, syntax, hooks), section, str(path))


def _read_c(path: Path, helpers: HelperTable,
            hooks: Mapping[str, HookSpec] | None) -> list[Program]:
    from bpfvm.asm.elf import load_object_file
    from bpfvm.asm.header import generate
    from bpfvm.toolchain import cached_object

    if hooks is None:
        raise BpfvmError(f"{path}: compiling C needs the hook records (bpfvm.h is made "
                         "from them); this caller passed none")
    return load_object_file(cached_object(path, generate(hooks, helpers)), stem=path.stem)


def formatter(program: Program, helpers: HelperTable) -> Callable[[Sequence[Insn], int], str]:
    """How diagnostics show an instruction of ``program``: its assembly."""
    return lambda insns, pc: format_insn(insns, pc, helpers=helpers, maps=program.maps)


def make_engine(program: Program, engine: str, helpers: HelperTable, *,
                maps: list[Map] | None = None, env: VmEnv | None = None,
                checked: bool = False,
                on_load: Callable[[int, int], None] | None = None,
                on_step: Callable[[int, list[int]], None] | None = None,
                depths: LoadDepths | None = None,
                validated: bool = False) -> Engine:
    """Build an engine without verifying (the caller has, or chose not to).
    ``on_load(address, size)`` observes every load, ``on_step(pc, registers)``
    every instruction and ``depths`` (a :class:`LoadDepths` of this program)
    the dependency depth of every load from its watched buffer (the
    interpreter only; ``depths`` replaces ``on_step``); ``validated`` skips the bytecode
    check the caller has already made.  ``auto`` is a
    :class:`~bpfvm.engine.Tiered` engine: the interpreter, moving to the JIT
    (sharing maps and environment) after :data:`~bpfvm.engine.TIER_UP_CALLS` runs."""
    if depths is not None:
        if on_step is not None:
            raise BpfvmError("give on_step or depths, not both")
        on_step = depths.step
    if engine == "auto" and on_load is None and on_step is None:
        interp = make_engine(program, "interp", helpers, maps=maps, env=env,
                             validated=validated)
        return Tiered(interp, lambda: make_engine(program, "jit", helpers, maps=interp.maps,
                                                  env=interp.env, checked=checked))
    if engine == "interp":
        from bpfvm.interp.interpreter import Interpreter  # each engine only when asked for

        return Interpreter(program, helpers, maps=maps, env=env, on_load=on_load,
                           on_step=on_step, validated=validated)
    if on_load is not None or on_step is not None:
        raise BpfvmError("only the interpreter observes loads and steps")
    if engine == "jit":
        from bpfvm.jit.engine import Jit

        return Jit(program, helpers, maps=maps, env=env, checked=checked)
    raise BpfvmError(f"unknown engine '{engine}' (expected one of {', '.join(ENGINES)})")


def load(program: Program, *, helpers: HelperTable, engine: str = "interp",
         hook: HookSpec | None = None, ctx_size: int | None = None,
         objects: dict[str, int] | None = None, verify: bool = True,
         maps: list[Map] | None = None, env: VmEnv | None = None,
         checked: bool = False) -> Loaded:
    """Validate, verify and build an engine for ``program``.

    Raises :class:`~bpfvm.errors.BytecodeErrors` for malformed bytecode and
    :class:`Rejected` when the verifier says no.  A program verified for a
    ``hook`` gets an engine whose ``ctx_reads`` holds the context fields the
    verifier found it may load and ``ctx_hook`` that hook's name (see
    :mod:`bpfvm.engine`).
    """
    validate(program.insns, helpers)
    verdict = None
    if verify:
        verdict = run_verifier(program, hook, ctx_size=ctx_size, helpers=helpers,
                               objects=objects, formatter=formatter(program, helpers))
        if not verdict.accepted:
            raise Rejected(verdict)
    eng = make_engine(program, engine, helpers, maps=maps, env=env, checked=checked)
    if verdict is not None and verdict.facts is not None and hook is not None:
        eng.ctx_reads = verdict.facts.ctx_reads  # type: ignore[attr-defined]
        eng.ctx_hook = hook.name  # type: ignore[attr-defined]
    return Loaded(eng, verdict)
