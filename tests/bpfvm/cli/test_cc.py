"""``bpfvm cc``: compiling a C policy with bpfvm.h on the include path, compile
errors and a missing compiler exiting 2 with what to do."""

from __future__ import annotations

from pathlib import Path

from bpfvm.cli import main
from bpfvm.toolchain import find_compiler
from tests.conftest import PROGRAMS


def test_cc_compiles_with_the_header_on_the_include_path(tmp_path: Path, capsys) -> None:
    out = tmp_path / "thp.o"
    assert main(["cc", str(PROGRAMS / "thp_policy.c"), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x7fELF"
    assert main(["verify", str(out)]) == 0
    assert "accepted for hook 'hugepage'" in capsys.readouterr().out


def test_cc_reports_compile_errors_with_exit_2(tmp_path: Path, capsys) -> None:
    src = tmp_path / "broken.c"
    src.write_text('#include "bpfvm.h"\nSEC("lifetime") int p(struct lifetime_ctx *c) '
                   '{ return c->no_such_field; }\n')
    assert main(["cc", str(src)]) == 2
    err = capsys.readouterr().err
    assert "compilation failed" in err and "no_such_field" in err


def test_cc_without_a_compiler_names_the_extra(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BPFVM_CC", str(tmp_path / "no-such-clang"))
    find_compiler.cache_clear()
    try:
        assert main(["cc", str(PROGRAMS / "thp_policy.c"), "-o", str(tmp_path / "x.o")]) == 2
    finally:
        monkeypatch.delenv("BPFVM_CC")
        find_compiler.cache_clear()
    assert "pip install 'bpfvm[cc]'" in capsys.readouterr().err
