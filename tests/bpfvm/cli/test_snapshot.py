"""``bpfvm mm snapshot`` and ``bpfvm mm analyze`` through the command line:
the shipped synthetic snapshot's counts, the plot, and clean exit-2 messages
(never a traceback) for missing, damaged or hostile snapshot files and for
recording without root or off Linux.  Nothing here reads the real /proc."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import numpy as np
import pytest

from bpfvm.cli import main
from mmcore.phys import snapshot as sn
from tests.conftest import ROOT
from tests.mmcore.studies import synthetic_snapshot as synth

SYNTH = str(synth.PATH)
MEMORY_LIMIT = 2 << 30


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONWARNINGS", None)
    return env


def test_analyze_json_counts(tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "a.json"
    assert main(["mm", "analyze", SYNTH, "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["pageblocks"] == 1280
    assert r["tainted"] == {"slab": 11, "pgtable": 6, "reserved": 10, "kernel_other": 5,
                            "any_unmovable": 30}
    assert r["obtainable"] == {"2m": 1249, "1g": 1}
    text = capsys.readouterr().out
    assert "1280 pageblocks of 2 MiB (2 with a hole)" in text
    assert "2 MiB blocks: 581 free now; 1249 obtainable" in text
    assert "1 GiB blocks: 0 free now; 1 obtainable of 3" in text


def test_analyze_json_to_stdout_only(capsys) -> None:  # noqa: ANN001
    assert main(["mm", "analyze", SYNTH, "--json", "-"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["origin"] == "synthetic" and r["tainted"]["any_unmovable"] == 30


def test_analyze_plot_writes_a_png(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("matplotlib")
    out = tmp_path / "map.png"
    assert main(["mm", "analyze", SYNTH, "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_snapshot_command_from_fake_proc(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    proc = tmp_path / "proc"
    proc.mkdir()
    flags = np.zeros(1024, "<u8")
    flags[:512] = 1 << sn.KPF_BUDDY
    flags[600] = 1 << sn.KPF_SLAB
    (proc / "kpageflags").write_bytes(flags.tobytes())
    (proc / "iomem").write_text("00000000-003fffff : System RAM\n")
    real = sn.record
    monkeypatch.setattr(sn, "record", lambda: real(proc))
    out = tmp_path / "s.npz"
    assert main(["mm", "snapshot", "-o", str(out)]) == 0
    assert "1024 frames" in capsys.readouterr().out
    assert main(["mm", "analyze", str(out), "--json", "-"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["origin"] == "recorded" and r["free_now"]["2m"] == 1
    assert r["tainted"]["slab"] == 1 and r["obtainable"]["2m"] == 1


def test_snapshot_without_root(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    real_open = sn.os.open

    def denied(path, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        if str(path).startswith("/proc"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)  # the output's directory stays writable

    monkeypatch.setattr(sn.os, "open", denied)
    monkeypatch.setattr(sn.sys, "platform", "linux")
    out = tmp_path / "s.npz"
    assert main(["mm", "snapshot", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "/proc/kpageflags: permission denied: recording a snapshot needs root" in err
    assert not out.exists()


def test_snapshot_elsewhere_than_linux(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setattr(sn.sys, "platform", "darwin")
    assert main(["mm", "snapshot", "-o", str(tmp_path / "s.npz")]) == 2
    assert "needs Linux" in capsys.readouterr().err


def _write(tmp_path) -> dict[str, str]:  # noqa: ANN001
    data = synth.PATH.read_bytes()
    files = {"garbage.npz": b"\x00" * 100, "half.npz": data[: len(data) // 2],
             "text.npz": b"PK\x03\x04 not really a zip"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "adir").mkdir()
    return {name: str(tmp_path / name) for name in files}


CASES = [
    (["mm", "analyze", "missing.npz"], "missing.npz: no such file"),
    (["mm", "analyze", "garbage.npz"], "garbage.npz: not a snapshot"),
    (["mm", "analyze", "half.npz"], "half.npz: "),
    (["mm", "analyze", "text.npz"], "text.npz: not a snapshot"),
    (["mm", "analyze", "adir"], "adir: is a directory"),
    (["mm", "analyze", "/dev/null"], "/dev/null: not a snapshot"),
    (["mm", "analyze", SYNTH, "--plot", "x.gif"], "--plot x.gif: name the image"),
    (["mm", "analyze", SYNTH, "--json", "adir"], "--json adir: is a directory"),
    (["mm", "analyze", SYNTH, "--json", SYNTH], "is the input file"),
    (["mm", "snapshot", "-o", "nodir/s.npz"], "-o nodir/s.npz: nodir: no such directory"),
]


@pytest.mark.parametrize("argv,says", CASES, ids=[" ".join(c[0][1:3]) + str(i)
                                                   for i, c in enumerate(CASES)])
def test_bad_inputs_exit_2_without_traceback(tmp_path, argv, says) -> None:  # noqa: ANN001
    _write(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "bpfvm.cli", *argv], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=60,
                          preexec_fn=_limits, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert says in proc.stderr
    assert proc.stderr.count("\n") == 1

