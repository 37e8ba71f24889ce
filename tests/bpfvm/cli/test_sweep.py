"""``bpfvm mm sweep``: outputs, resume, plots, the cluster path and clean
errors with exit codes 0 (all runs ok), 1 (some failed), 2 (bad input)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfvm.cli import main
from tests.mmcore.studies.test_sweep import SWEEP, free_port, write_sweep

pd = pytest.importorskip("pandas")
pytest.importorskip("distributed")


def rows(path: Path) -> list[dict]:
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return df.drop(columns=["wall_seconds"]).astype(object).fillna("").to_dict("records")


def test_a_sweep_writes_one_row_per_run(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.csv"
    assert main(["mm", "sweep", str(write_sweep(tmp_path)), "--jobs", "1",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "16 runs in" in text and "in-process" in text and str(out) in text
    got = rows(out)
    assert len(got) == 16 and {r["status"] for r in got} == {"ok"}
    assert {(r["seed"], r["variant"]) for r in got} == {
        (s, v) for s in (1, 2) for v in ("builtin", "programs")}


def test_without_out_a_table_is_printed(tmp_path: Path, capsys) -> None:
    sweep = write_sweep(tmp_path, SWEEP.replace("[0.2, 0.6]", "[0.2]").replace(
        '["64MiB", "32MiB"]', '["64MiB"]'))
    assert main(["mm", "sweep", str(sweep), "--jobs", "1"]) == 0
    text = capsys.readouterr().out
    assert "sweep sweep.toml: 4 runs" in text
    assert "hot_share" in text and "distance" in text and text.count("programs") == 2


def test_resume_runs_only_what_is_missing(tmp_path: Path, capsys) -> None:
    sweep, out = write_sweep(tmp_path), tmp_path / "r.parquet"
    assert main(["mm", "sweep", str(sweep), "--jobs", "1", "--out", str(out)]) == 0
    full = rows(out)
    df = pd.read_parquet(out)
    df = df.drop(index=[3, 7, 8])
    df.loc[0, "status"] = "failed"  # a failed run is run again
    df.to_parquet(out, index=False)
    capsys.readouterr()
    assert main(["mm", "sweep", str(sweep), "--jobs", "1", "--out", str(out), "--resume"]) == 0
    assert "4 runs in" in capsys.readouterr().out
    assert rows(out) == full


def test_resume_of_a_complete_sweep_runs_nothing(tmp_path: Path, capsys) -> None:
    sweep, out = write_sweep(tmp_path), tmp_path / "r.csv"
    assert main(["mm", "sweep", str(sweep), "--jobs", "1", "--out", str(out)]) == 0
    before = out.read_text()
    capsys.readouterr()
    assert main(["mm", "sweep", str(sweep), "--jobs", "1", "--out", str(out), "--resume"]) == 0
    text = capsys.readouterr().out
    assert "0 runs in" in text and "16 already done" in text
    assert out.read_text() == before


def test_the_cluster_path_gives_the_rows_of_the_local_one(tmp_path: Path) -> None:
    from distributed import LocalCluster

    sweep = write_sweep(tmp_path)
    local, remote = tmp_path / "local.csv", tmp_path / "remote.parquet"
    assert main(["mm", "sweep", str(sweep), "--jobs", "1", "--out", str(local)]) == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        assert main(["mm", "sweep", str(sweep), "--cluster", cluster.scheduler_address,
                     "--out", str(remote)]) == 0
    assert rows(remote) == rows(local)


def test_failed_runs_are_rows_and_exit_1(tmp_path: Path, capsys) -> None:
    text = SWEEP.replace('"phases.0.processes.hot_share" = [0.2, 0.6]',
                         '"machine.nodes.0.movable" = ["0MiB", "48MiB"]')
    out = tmp_path / "r.csv"
    assert main(["mm", "sweep", str(write_sweep(tmp_path, text)), "--jobs", "1",
                 "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "4 failed" in printed and "movable zone must be smaller" in printed
    got = rows(out)
    assert len(got) == 16 and sum(r["status"] == "failed" for r in got) == 4


def test_plot(tmp_path: Path, capsys) -> None:
    png = tmp_path / "s.png"
    assert main(["mm", "sweep", str(write_sweep(tmp_path)), "--jobs", "1", "--plot", str(png),
                 "--metrics", "access.mean_distance,tlb.misses",
                 "--axis", "machine.nodes.0.memory"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plot: " in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--resume"], "--resume needs --out"),
    (["--out", "r.xlsx"], "unknown results format '.xlsx'"),
    (["--plot", "p.txt"], "--plot p.txt: expected a .png"),
    (["--plot", "p.png", "--axis", "duration"], "--axis duration: not a grid axis"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--plot", "p.png", "--metrics", "mean_distanse"], "--metrics mean_distanse: not a "),
    (["--cluster", "tcp://127.0.0.1:{port}", "--timeout", "1", "--out", "r.csv"],
     "cannot connect"),
])
def test_bad_options_exit_2_without_traceback(tmp_path: Path, capsys, monkeypatch,
                                              extra: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = write_sweep(tmp_path, SWEEP.replace("seeds = [1, 2]", "seeds = [1]").replace(
        "[0.2, 0.6]", "[0.2]"))
    extra = [e.format(port=free_port()) for e in extra]
    where = [] if "--jobs" in extra or "--cluster" in extra else ["--jobs", "1"]
    assert main(["mm", "sweep", str(sweep), *where, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r.csv").exists()


def test_a_bad_sweep_file_is_file_key_message(tmp_path: Path, capsys) -> None:
    sweep = write_sweep(tmp_path, 'scenario = "tiny.toml"\n[grid]\n"machine.nodes.0.memroy" = '
                        '["1GiB"]\n')
    assert main(["mm", "sweep", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bpfvm: {sweep}: grid.\"machine.nodes.0.memroy\"[0]: ")
    assert "unknown key" in err
    assert main(["mm", "sweep", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: (file): no such file" in capsys.readouterr().err


def test_jobs_and_cluster_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["mm", "sweep", str(write_sweep(tmp_path)), "--jobs", "2", "--cluster", "x:1"])
    assert exc.value.code == 2


def test_the_example_sweep_is_valid() -> None:
    from mmcore.studies.sweep import load_sweep
    from tests.conftest import PROGRAMS

    s = load_sweep(PROGRAMS / "sweep_example.toml")
    assert s.runs == 32 and Path(s.scenario_file).name == "tier_placement.toml"
