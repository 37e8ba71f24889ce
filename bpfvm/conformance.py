"""BPF conformance vectors: read the ``.data`` format and run a vector on an engine.

A vector file is split into sections opened by ``-- name`` lines; ``#``
starts a comment anywhere.  Sections: ``asm`` (conformance-syntax program),
``raw`` (one 64-bit instruction word per line, used instead of ``asm``),
``mem`` (hex bytes of the input buffer), ``result`` (expected r0: hex if it
contains ``0x``, else decimal), ``error`` (expected error text instead of a
result); ``c`` and ``no register offset`` (a legacy marker) are ignored.  A
file with any other section is skipped with that reason, as the upstream
runner does.

:func:`load_vector` reads a file, :func:`run_vector` assembles (or decodes)
it, builds an engine with the caller's factory and the conformance helper
table (helper 5 returns r1), runs it on a copy of ``mem`` and compares r0.
This module neither prints nor decides exit codes; the CLI does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpfvm.errors import BpfvmError
from bpfvm.helpers import HelperTable
from bpfvm.isa.insn import decode
from bpfvm.limits import MAX_TEXT_FILE, read_bounded
from bpfvm.program import Program
from bpfvm.stdhelpers import conformance_helpers

M64 = (1 << 64) - 1
KNOWN_SECTIONS = ("asm", "raw", "mem", "result", "error", "c", "no register offset")

EngineFactory = Callable[[Program, HelperTable], Any]


class VectorError(BpfvmError):
    """A vector file that cannot be read or parsed: ``file: message``."""


@dataclass(frozen=True)
class Vector:
    name: str  # file name without directories
    path: str
    asm: str  # the program text (comments removed); "" when absent
    mem: bytes
    result: int | None  # expected r0 (unsigned 64-bit)
    raw: tuple[int, ...] | None = None  # instruction words from ``-- raw``
    error: str | None = None  # expected error text
    skip: str | None = None  # why this vector cannot be run here
    source: str = ""  # the asm lines at their line numbers in the file (others blank)


@dataclass(frozen=True)
class VectorOutcome:
    name: str
    status: str  # "pass", "fail" or "skip"
    expected: int | str | None = None
    actual: int | str | None = None
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def parse_vector(text: str, path: str = "<vector>") -> Vector:
    """A :class:`Vector` from the text of a ``.data`` file."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    lines = text.splitlines()
    source = [""] * len(lines)
    for i, line in enumerate(lines):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("--"):
            current = line[2:].strip()
            sections.setdefault(current, [])
            continue
        if current is None:
            raise VectorError(f"{path}: text before the first section (line {i + 1}): "
                              f"{_short(line)}")
        sections[current].append(line)
        if current == "asm":
            source[i] = line
    name = Path(path).name
    unknown = [s for s in sections if s not in KNOWN_SECTIONS]
    skip = f"unknown section '-- {unknown[0]}'" if unknown else None
    try:
        mem = bytes.fromhex(" ".join(sections.get("mem", [])))
    except ValueError:
        raise VectorError(f"{path}: -- mem: not hex bytes") from None
    result = None
    if "result" in sections:
        value = " ".join(sections["result"])
        try:
            if _too_long(value):
                raise ValueError(value)
            result = (int(value, 16) if "0x" in value.lower() else int(value)) & M64
        except ValueError:
            raise VectorError(f"{path}: -- result: not a number (64 bits at most): "
                              f"{_short(value)}") from None
    raw = None
    if "raw" in sections:
        try:
            raw = tuple(_word(w) for w in sections["raw"])
        except ValueError:
            raise VectorError(f"{path}: -- raw: not a list of 64-bit numbers") from None
    error = " ".join(sections["error"]) if "error" in sections else None
    if result is None and error is None and skip is None:
        skip = "no '-- result' or '-- error' section"
    if "asm" not in sections and raw is None and skip is None:
        skip = "no program ('-- asm' or '-- raw')"
    return Vector(name, path, "\n".join(sections.get("asm", [])) + "\n", mem, result, raw,
                  error, skip, "\n".join(source) + "\n")


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _too_long(text: str) -> bool:
    """More digits than any 64-bit number needs (checked before ``int`` sees
    them, whatever their count)."""
    return len(text.strip().lstrip("+-").lower().removeprefix("0x").lstrip("0")) > 20


def _word(text: str) -> int:
    """One ``-- raw`` word (ValueError when it is not a 64-bit number)."""
    if _too_long(text):
        raise ValueError(text)
    return int(text, 0) & M64


def load_vector(path: str | Path) -> Vector:
    try:
        text = read_bounded(path, MAX_TEXT_FILE, "vector").decode("utf-8")
    except BpfvmError as exc:
        raise VectorError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise VectorError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_vector(text, str(path))


def find_vectors(paths: Iterable[str | Path]) -> list[Path]:
    """The ``.data`` files named by ``paths`` (directories are searched, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*.data")))
        elif p.exists():
            out.append(p)
        else:
            raise VectorError(f"{p}: no such file or directory")
    return out


def program_of(vector: Vector) -> Program:
    """The vector's program: decoded from ``raw`` if present, else assembled."""
    if vector.raw is not None:
        data = b"".join(w.to_bytes(8, "little") for w in vector.raw)
        return Program(decode(data), name=Path(vector.name).stem)
    from bpfvm.asm.assembler import assemble

    program = assemble(vector.source or vector.asm, vector.path, syntax="conformance")
    program.name = Path(vector.name).stem
    return program


def default_factory(program: Program, helpers: HelperTable) -> Any:
    from bpfvm.interp.interpreter import Interpreter

    return Interpreter(program, helpers)


def run_vector(vector: Vector, engine_factory: EngineFactory | None = None,
               helpers: HelperTable | None = None) -> VectorOutcome:
    """Run one vector; never raises for a problem of the vector or the engine run."""
    if vector.skip:
        return VectorOutcome(vector.name, "skip", message=vector.skip)
    factory = engine_factory or default_factory
    helpers = helpers if helpers is not None else conformance_helpers()
    try:
        program = program_of(vector)
        engine = factory(program, helpers)
        actual: int | str = engine.run(bytearray(vector.mem))
    except ImportError as exc:
        return VectorOutcome(vector.name, "skip", message=f"cannot assemble: {exc}")
    except BpfvmError as exc:
        if vector.error is not None:
            ok = vector.error.lower() in str(exc).lower()
            return VectorOutcome(vector.name, "pass" if ok else "fail", vector.error, str(exc),
                           "" if ok else "error differs")
        return VectorOutcome(vector.name, "fail", vector.result, None, str(exc))
    if vector.error is not None:
        return VectorOutcome(vector.name, "fail", vector.error, actual,
                       "expected an error, the program ran")
    if actual == vector.result:
        return VectorOutcome(vector.name, "pass", vector.result, actual)
    return VectorOutcome(vector.name, "fail", vector.result, actual,
                   f"r0 is {actual:#x}, expected {vector.result:#x}")
