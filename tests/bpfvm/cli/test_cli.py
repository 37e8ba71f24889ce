"""The command line: exit codes, messages without tracebacks, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpfvm.cli import main
from tests.conftest import VECTORS

SUM_PROG = """\
# sum the bytes of the input buffer: r1 = buffer, r2 = length
    r0 = 0
    r3 = 0
loop:
    if r3 >= r2 goto done
    r4 = r1
    r4 += r3
    r5 = *(u8 *)(r4 + 0)
    r0 += r5
    r3 += 1
    goto loop
done:
    exit
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_asm_then_run_the_bin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path, "sum.s", SUM_PROG)
    assert main(["asm", str(src), "-o", str(tmp_path / "sum.bin")]) == 0
    assert (tmp_path / "sum.bin").stat().st_size == 10 * 8
    capsys.readouterr()
    assert main(["run", str(tmp_path / "sum.bin"), "--mem", "01 02 03 fa", "--no-verify"]) == 0
    assert capsys.readouterr().out.strip() == "r0 = 0x100 = 256"


def test_run_json_reports_signed_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path, "neg.s", "r0 = -5\nexit\n")
    assert main(["run", str(src), "--json", "--no-verify"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["r0"] == (1 << 64) - 5 and out["r0_signed"] == -5


def test_disasm_round_trips_through_asm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path, "sum.s", SUM_PROG)
    main(["asm", str(src), "-o", str(tmp_path / "a.bin")])
    for syntax in ("kernel", "conformance"):
        capsys.readouterr()
        assert main(["disasm", str(tmp_path / "a.bin"), "--syntax", syntax]) == 0
        text = capsys.readouterr().out
        again = _write(tmp_path, f"again-{syntax}.s", text)
        main(["asm", str(again), "-o", str(tmp_path / f"b-{syntax}.bin")])
        assert (tmp_path / f"b-{syntax}.bin").read_bytes() == (tmp_path / "a.bin").read_bytes()


@pytest.mark.parametrize("argv,code,message", [
    (["run", "missing.s"], 2, "missing.s: no such file"),
    (["run", "{tmp}/bad.s"], 2, "bad.s:2:"),
    (["run", "{tmp}/bad.bin"], 2, "truncated instruction"),
    (["run", "{tmp}/ok.s", "--mem", "zz"], 2, "--mem: not hex bytes"),
    (["run", "{tmp}/oob.s", "--no-verify"], 1, "pc 1 ("),
    (["hooks", "nope"], 2, "unknown hook 'nope'"),
    (["conformance", "nowhere"], 2, "nowhere: no such file or directory"),
])
def test_user_errors_exit_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  argv: list[str], code: int, message: str) -> None:
    _write(tmp_path, "bad.s", "r0 = 1\nr0 = = 2\nexit\n")
    (tmp_path / "bad.bin").write_bytes(b"\x95" + bytes(10))
    _write(tmp_path, "ok.s", "r0 = 1\nexit\n")
    _write(tmp_path, "oob.s", "r0 = 0\nr0 = *(u64 *)(r0 + 0)\nexit\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_hooks_json_lists_every_hook(capsys: pytest.CaptureFixture[str]) -> None:
    from mmcore.hooks.specs import HOOKS

    assert main(["hooks", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [h["name"] for h in listed] == list(HOOKS)
    zone = next(h for h in listed if h["name"] == "zone_resize")
    assert zone["fields"][1] == {"name": "scanned_movable", "offset": 8, "size": 8,
                                 "writable": False, "pointer": None,
                                 "doc": "pages scanned for movable allocations"}


@pytest.mark.skipif(not VECTORS.is_dir(), reason="../shared/conformance is absent")
def test_conformance_command_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    picked = [VECTORS / "add.data", VECTORS / "lock_cmpxchg.data"]
    broken = tmp_path / "broken.data"
    broken.write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n")
    assert main(["conformance", *map(str, picked), str(broken)]) == 1
    out = capsys.readouterr().out
    assert "FAIL broken.data: r0 is 0x1, expected 0x2" in out
    assert out.strip().splitlines()[-1] == "2 passed, 1 failed"
