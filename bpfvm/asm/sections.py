"""Source files holding several programs, one ``.hook`` section each.

A policy that needs several hooks (a page table needs ``pt_map``,
``pt_unmap`` and ``pt_lookup``) keeps them in one file, as a libbpf object
keeps one program per ELF section: each section starts at a ``.hook`` line
and runs to the next.  Lines before the first ``.hook`` (comments,
``.syntax``, ``.map``) belong to every section.  Each section is assembled
on its own with the other sections' lines blanked, so errors and source
locations keep the file's line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from bpfvm.errors import BpfvmError
from bpfvm.helpers import HelperTable
from bpfvm.program import Program

_HOOK_LINE = re.compile(r"^\s*\.hook\b")


def section_starts(text: str) -> list[int]:
    """0-based numbers of the lines that open a ``.hook`` section."""
    return [i for i, line in enumerate(text.splitlines()) if _HOOK_LINE.match(line)]


def split_sections(text: str, filename: str = "<input>", syntax: str | None = None,
                   helpers: HelperTable | None = None,
                   progress: Callable[[int, int], None] | None = None) -> list[Program]:
    """Assemble every ``.hook`` section of ``text`` (a file without ``.hook``
    lines is one section).  Programs are named ``stem:hook``.  ``progress``
    is the assembler's, counting the lines of every section's pass."""
    from bpfvm.asm.assembler import assemble

    lines = text.splitlines()
    heads = section_starts(text)
    if len(heads) <= 1:
        return [assemble(text, filename, syntax=syntax, helpers=helpers, progress=progress)]
    out: list[Program] = []
    seen: dict[str, int] = {}
    for k, head in enumerate(heads):
        end = heads[k + 1] if k + 1 < len(heads) else len(lines)
        body = "\n".join(line if i < heads[0] or head <= i < end else ""
                         for i, line in enumerate(lines))
        program = assemble(body, filename, syntax=syntax, helpers=helpers,
                           progress=_shifted(progress, k, len(heads), len(lines)))
        hook = str(program.hook)
        if hook in seen:
            raise BpfvmError(f"{filename}:{head + 1}: a second section for hook {hook} "
                             f"(the first starts at line {seen[hook] + 1})")
        seen[hook] = head
        program.name = f"{Path(filename).stem}:{hook}"
        out.append(program)
    return out


def _shifted(progress: Callable[[int, int], None] | None, k: int, sections: int,
             lines: int) -> Callable[[int, int], None] | None:
    """Section ``k``'s pass over the file's ``lines`` as a share of all
    ``sections`` passes."""
    if progress is None:
        return None
    return lambda done, total: progress(k * lines + done * lines // max(total, 1),
                                        sections * lines)


def pick_section(programs: list[Program], hook: str | None, filename: str) -> Program:
    """The one program of a file, or its section for ``hook``."""
    if hook is not None:
        for program in programs:
            if program.hook == hook:
                return program
        if len(programs) > 1:
            raise BpfvmError(f"{filename}: no section for hook '{hook}' (sections: "
                             f"{', '.join(str(p.hook) for p in programs)})")
    if len(programs) == 1:
        return programs[0]
    raise BpfvmError(f"{filename}: holds {len(programs)} programs (sections: "
                     f"{', '.join(str(p.hook) for p in programs)}); choose one with --section")
