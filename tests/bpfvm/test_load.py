"""bpfvm.load reading BPF objects and C: ``.o`` as the object loader reads
it, ``.c`` compiled against the bpfvm.h of the hook and helper records the
caller passes (none passed: an error saying so, not a compile failure)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bpfvm.errors import BpfvmError
from bpfvm.load import read_program, read_programs
from mmcore.hooks.helpers import policy_helpers
from mmcore.hooks.specs import HOOKS
from tests.bpfvm.asm.cc import C_DATA, build

HELPERS = policy_helpers()


def test_objects_are_read_one_program_per_section(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    obj = tmp_path / "features.o"
    shutil.copy(build(C_DATA / "features.c", tmp_path / "build"), obj)
    progs = read_programs(obj, HELPERS)
    assert [p.hook for p in progs] == ["lifetime", "placement"]
    assert read_program(obj, HELPERS, section="placement").name == "features:placement"


def test_c_is_compiled_with_the_callers_records() -> None:
    progs = read_programs(C_DATA / "features.c", HELPERS, hooks=HOOKS)
    assert [p.name for p in progs] == ["features:lifetime", "features:placement"]
    assert all(loc is not None and loc.file.endswith("features.c")
               for p in progs for loc in p.source)


def test_c_without_hook_records_says_so() -> None:
    with pytest.raises(BpfvmError, match="compiling C needs the hook records"):
        read_programs(C_DATA / "features.c", HELPERS)
