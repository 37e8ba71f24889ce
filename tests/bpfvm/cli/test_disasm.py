"""``bpfvm disasm``: every section of a file, and llvm-objdump's layout."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bpfvm.cli import main
from tests.conftest import PROGRAMS


def test_every_section_and_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bpfvm.load import read_programs
    from mmcore.hooks.helpers import policy_helpers

    assert main(["disasm", str(PROGRAMS / "hashed_pt.s")]) == 0
    text = capsys.readouterr().out
    assert text.count(".syntax kernel") == 1
    assert [line for line in text.splitlines() if line.startswith(".hook")] == \
        [".hook pt_lookup", ".hook pt_map", ".hook pt_unmap"]
    again = tmp_path / "again.s"
    again.write_text(text)
    helpers = policy_helpers()
    before = read_programs(PROGRAMS / "hashed_pt.s", helpers)
    after = read_programs(again, helpers)
    assert [p.bytecode() for p in after] == [p.bytecode() for p in before]
    assert [p.objects for p in after] == [p.objects for p in before]


def test_objdump_layout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["disasm", str(PROGRAMS / "hashed_pt.s"), "--objdump"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"{PROGRAMS / 'hashed_pt.s'}:\tfile format elf64-bpf"
    sections = [line for line in out if line.startswith("Disassembly of section")]
    assert sections == [f"Disassembly of section {h}:" for h in ("pt_lookup", "pt_map",
                                                                 "pt_unmap")]
    assert "0000000000000000 <pt_lookup>:" in out
    # a lddw: both slots' bytes on one line, the next line is slot 2
    assert out[out.index("0000000000000000 <pt_lookup>:") + 1] == \
        "       0:\t18 09 00 00 00 00 01 00 00 00 00 00 00 00 00 00\tr9 = 65536 ll"
    jump = next(line for line in out if "goto" in line)
    assert re.search(r"goto [+-]\d+ <pt_lookup\+0x[0-9a-f]+>$", jump)


def _compiler() -> bool:
    from bpfvm.toolchain import find_compiler

    return find_compiler() is not None


@pytest.mark.skipif(not shutil.which("llvm-objdump") or not _compiler(),
                    reason="needs a BPF C compiler and llvm-objdump")
def test_objdump_matches_llvm_objdump(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "thp.o"
    assert main(["cc", str(PROGRAMS / "thp_policy.c"), "-o", str(obj)]) == 0
    capsys.readouterr()
    assert main(["disasm", str(obj), "--objdump"]) == 0
    ours = capsys.readouterr().out.replace(str(obj), "F").splitlines()
    theirs = subprocess.run(["llvm-objdump", "-d", str(obj)], capture_output=True, text=True,
                            check=True).stdout.replace(str(obj), "F").splitlines()
    assert len(ours) == len(theirs)
    symbol = re.compile(r"<[\w.]+(\+0x[0-9a-f]+)?>")
    differ = [(a, b) for a, b in zip(ours, theirs, strict=True)
              if symbol.sub("<S\\1>", a) != symbol.sub("<S\\1>", b)]
    # only map loads differ: llvm-objdump shows the unrelocated 'r1 = 0 ll'
    assert differ and all("map[" in a and b.endswith("= 0 ll") for a, b in differ)


def test_objdump_of_one_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["disasm", str(PROGRAMS / "hashed_pt.s"), "--objdump",
                 "--section", "pt_map"]) == 0
    out = capsys.readouterr().out
    assert out.count("Disassembly of section") == 1 and "section pt_map:" in out


def test_objdump_excludes_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["disasm", str(PROGRAMS / "hashed_pt.s"), "--objdump", "--syntax", "kernel"])
    assert exc.value.code == 2
    assert "not allowed with argument --objdump" in capsys.readouterr().err
