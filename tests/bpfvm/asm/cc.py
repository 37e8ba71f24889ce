"""Compiling C for the tests with bpfvm.toolchain and the CLI's ``bpfvm.h``.

No skip when no compiler is found: the test extra installs ziglang, whose
clang builds BPF, so a missing compiler fails the tests that compile (with
the toolchain's message saying what to install)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from bpfvm.cli.common import header_text
from bpfvm.toolchain import compile_c
from tests.conftest import DATA

C_DATA = DATA / "c"
OBJDUMP = shutil.which("llvm-objdump")

_built: dict[tuple[str, str], Path] = {}


def build(source: str | Path, out_dir: Path, **kw) -> Path:
    """``source`` (a path, or C text) compiled into ``out_dir``; cached per session."""
    if isinstance(source, Path):
        src = source
    else:
        src = out_dir / f"t{abs(hash(source)) % 10**8}.c"
        src.write_text(source)
    key = (str(src), str(sorted(kw.items())))
    if key not in _built or not _built[key].is_file():
        out = out_dir / f"{src.stem}.o"
        _built[key] = compile_c(src, out, header=header_text(), **kw)
    return _built[key]


def objdump(path: Path, section: str) -> list[str]:
    """llvm-objdump's instruction text for ``section``, one entry per slot."""
    assert OBJDUMP is not None
    out = subprocess.run([OBJDUMP, "-d", "--no-show-raw-insn", "-j", section, str(path)],
                         capture_output=True, text=True, check=True).stdout
    lines = []
    for line in out.splitlines():
        m = re.match(r"\s*\d+:\s+(.*)$", line)
        if m:
            lines.append(re.sub(r"\s+<[\w.+]+>$", "", m.group(1)).strip())
    return lines
