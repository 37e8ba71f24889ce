"""``bpfvm fuzz``: options, exit codes, JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpfvm.cli import main


@pytest.mark.parametrize("argv", [
    ["fuzz", "--seconds", "0"],
    ["fuzz", "--jobs", "0"],
    ["fuzz", "--jit-every", "-1"],
    ["fuzz", "--reduce-seconds", "-1"],
    ["fuzz", "--corpus", "/nonexistent/dir"],
])
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bpfvm: ") and "Traceback" not in err


def test_short_run_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("verifier")
    code = main(["fuzz", "--seconds", "2", "--jobs", "1", "--seed", "3", "--json",
                 "--reduce-seconds", "1",
                 "--corpus", str(tmp_path), "--out", str(tmp_path / "out")])
    info = json.loads(capsys.readouterr().out)
    assert info["cases"] > 0 and 0 <= info["acceptance_rate"] <= 1
    assert code == (1 if info["findings"] else 0)
    assert len(list((tmp_path / "out").glob("*.s"))) == info["findings"]
