"""Files of several programs: one per ``.hook`` section."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfvm.asm.sections import pick_section, split_sections
from bpfvm.cli import main
from bpfvm.errors import BpfvmError

TWO = """\
# shared prologue
.map counts array key=4 value=8 entries=4
.hook placement
    r0 = 0
    exit
.hook lifetime
    r0 = 1
    exit
"""


def test_each_section_is_a_program_with_the_shared_lines_and_file_lines() -> None:
    progs = split_sections(TWO, "two.s")
    assert [p.hook for p in progs] == ["placement", "lifetime"]
    assert [p.name for p in progs] == ["two:placement", "two:lifetime"]
    assert all(p.maps[0].name == "counts" for p in progs)
    assert [loc.line for loc in progs[1].source] == [7, 8]


def test_a_file_without_sections_is_one_program() -> None:
    (prog,) = split_sections("r0 = 0\nexit\n", "one.s")
    assert prog.hook is None and len(prog.insns) == 2


def test_duplicate_sections_and_picking() -> None:
    with pytest.raises(BpfvmError, match=r"dup.s:3: a second section for hook lifetime "
                       r"\(the first starts at line 1\)"):
        split_sections(".hook lifetime\nexit\n.hook lifetime\nexit\n", "dup.s")
    progs = split_sections(TWO, "two.s")
    assert pick_section(progs, "lifetime", "two.s") is progs[1]
    with pytest.raises(BpfvmError, match="holds 2 programs .*choose one with --section"):
        pick_section(progs, None, "two.s")
    with pytest.raises(BpfvmError, match="no section for hook 'reclaim'"):
        pick_section(progs, "reclaim", "two.s")


def test_errors_keep_the_file_line_numbers() -> None:
    with pytest.raises(BpfvmError, match="bad.s:5:"):
        split_sections(".hook placement\nr0 = 0\nexit\n.hook lifetime\nr0 = = 1\nexit\n",
                       "bad.s")


def test_cli_verifies_every_section_and_runs_one(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "two.s"
    src.write_text(TWO)
    assert main(["verify", str(src)]) == 0
    out = capsys.readouterr().out
    assert "[placement]: accepted" in out and "[lifetime]: accepted" in out
    assert main(["run", str(src), "--no-verify"]) == 2
    assert "choose one with --section" in capsys.readouterr().err
    assert main(["run", str(src), "--section", "lifetime", "--no-verify"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "r0 = 0x1 = 1", "hook lifetime: r0 within its contract [0, 2]"]
