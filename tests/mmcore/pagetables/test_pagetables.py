"""Tests of bpfvm.cli.mm_pagetables: the 'bpfvm mm pagetables' command."""

import argparse
import json
import subprocess
import sys

import pytest

from bpfvm.cli.mm_pagetables import register, run
from bpfvm.errors import BpfvmError
from tests.conftest import ROOT

ROOT = ROOT
TINY = ROOT / "tests" / "data" / "pt" / "tiny.toml"


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    return p.parse_args(["pagetables", *argv])


def test_arguments():
    args = parse(str(TINY), "--layouts", "dense", "--engine", "jit", "--json", "-")
    assert (args.config, args.layouts, args.engine, args.json) == (str(TINY), "dense", "jit", "-")
    assert args.func is run
    assert parse().engine == "interp"


def test_json_rows(capsys):
    assert run(parse(str(TINY), "--layouts", "dense", "--json", "-")) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["table"] for r in data["rows"]] == ["radix", "hashed", "learned"]
    assert data["rows"][0]["refs_nopwc"] == 4.0 and data["walks"] == 200


def test_table_output(capsys, tmp_path):
    out = tmp_path / "rows.json"
    assert run(parse(str(TINY), "--layouts", "dense", "--json", str(out))) == 0
    text = capsys.readouterr().out
    assert "radix" in text and "learned" in text and "refs" in text
    assert len(json.loads(out.read_text())["rows"]) == 3


def test_unwritable_json():
    with pytest.raises(BpfvmError, match="/nonexistent/dir: no such directory"):
        run(parse(str(TINY), "--layouts", "dense", "--json", "/nonexistent/dir/x.json"))


@pytest.mark.parametrize("argv, message", [
    (["--layouts", "nope"], "--layouts: nope: no such layout"),
    (["/nonexistent.toml"], "/nonexistent.toml: (file): cannot read"),
])
def test_errors_exit_2_without_traceback(argv, message):
    proc = subprocess.run([sys.executable, "-m", "bpfvm", "mm", "pagetables",
                           *(argv if argv[0].startswith("/") else [str(TINY), *argv])],
                          cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
