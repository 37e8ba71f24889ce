"""Sweeps (:mod:`mmcore.studies.sweep`): the file format and its errors, the
plan of runs, rows (failed runs included), results files and resuming, and
identical rows in this process, on a Dask ``LocalCluster`` and on a
``dask scheduler`` + ``dask worker`` pair started as subprocesses."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpfvm.program import Program
from mmcore.errors import ScenarioError
from mmcore.studies import sweep as sw
from tests.conftest import PROGRAMS

pytest.importorskip("distributed")
pytest.importorskip("pandas")

TINY = """\
name = "tiny_tiers"
seed = 3
duration = 12
sample_every = 4

[machine]
nodes = [ { memory = "64MiB", tier = "dram" }, { memory = "128MiB", tier = "cxl" } ]
distance = [[10, 30], [30, 10]]

[[phases]]
[phases.processes]
arrival_rate = 0.5
max_processes = 4
lifetime = [5, 20]
size = ["4MiB", "16MiB"]
huge = { thp = 1 }
faults_per_tick = 64
accesses_per_tick = 16
hot_share = 0.3
home_nodes = [0]

[[attach]]
hook = "placement"
program = "tier_placement.s"
"""

SWEEP = """\
scenario = "tiny.toml"
seeds = [1, 2]
variants = ["builtin", "programs"]
[grid]
"phases.0.processes.hot_share" = [0.2, 0.6]
"machine.nodes.0.memory" = ["64MiB", "32MiB"]
"""


def write_sweep(tmp_path: Path, sweep: str = SWEEP, scenario: str = TINY,
                name: str = "sweep.toml") -> Path:
    """A tiny scenario and a sweep over it (2 x 2 grid x 2 seeds x 2 variants)."""
    (tmp_path / "tiny.toml").write_text(scenario)
    path = tmp_path / name
    path.write_text(sweep)
    return path


def parse(tmp_path: Path, sweep: str, scenario: str = TINY) -> sw.Sweep:
    return sw.load_sweep(write_sweep(tmp_path, sweep, scenario))


def strip(rows: list[dict]) -> list[dict]:
    """Rows in run order without wall time (which differs from run to run)."""
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rows]


def run_all(sweep: sw.Sweep, how: sw.Execution) -> list[dict]:
    tasks = sw.plan(sweep)
    got: dict[int, dict] = {}
    sw.execute(tasks, how, lambda t, row: got.__setitem__(t.index, row))
    assert sorted(got) == [t.index for t in tasks]
    return [got[i] for i in sorted(got)]


# --- the file --------------------------------------------------------------------------


def test_a_sweep_file_is_read(tmp_path: Path) -> None:
    s = parse(tmp_path, SWEEP)
    assert s.seeds == (1, 2) and s.variants == ("builtin", "programs")
    assert [(a.path, a.values) for a in s.axes] == [
        ("phases.0.processes.hot_share", (0.2, 0.6)),
        ("machine.nodes.0.memory", ("64MiB", "32MiB"))]
    assert s.runs == 16
    assert s.scenario_file == str(tmp_path / "tiny.toml")
    assert s.columns[:2] == ("phases.0.processes.hot_share", "machine.nodes.0.memory")


def test_unquoted_dotted_keys_and_defaults(tmp_path: Path) -> None:
    s = parse(tmp_path, 'scenario = "tiny.toml"\n[grid]\nphases.0.processes.hot_share = [0.1]\n'
                        "duration = [5, 6]\n")
    assert [a.path for a in s.axes] == ["phases.0.processes.hot_share", "duration"]
    assert s.seeds == (3,)  # the scenario's own seed
    assert s.variants == sw.VARIANTS
    assert s.runs == 4


@pytest.mark.parametrize("text, key, message", [
    ('seeds = [1]\n', "scenario", "missing"),
    ('scenario = "nope.toml"\n', "scenario", "nope.toml: no such file"),
    ('scenario = "tiny.toml"\nbogus = 1\n', "bogus", "unknown key"),
    ('scenario = "tiny.toml"\nseeds = []\n', "seeds", "non-empty array"),
    ('scenario = "tiny.toml"\nseeds = [1, 1]\n', "seeds", "duplicate seeds"),
    ('scenario = "tiny.toml"\nvariants = ["jit"]\n', "variants", "unknown variant 'jit'"),
    ('scenario = "tiny.toml"\n[grid]\nduration = 5\n', "grid.duration", "non-empty array"),
    ('scenario = "tiny.toml"\n[grid]\nseed = [1, 2]\n', "grid.seed", "vary the seed with"),
    ('scenario = "tiny.toml"\n[grid]\nduration = [5, 5]\n', "grid.duration", "duplicate"),
    ('scenario = "tiny.toml"\n[grid]\n"machine.nodes.2.memory" = ["1GiB"]\n',
     'grid."machine.nodes.2.memory"', "machine.nodes.2 does not exist in the scenario "
     "(machine.nodes has 2 entries)"),
    ('scenario = "tiny.toml"\n[grid]\n"mm.tlb.entries_4k" = [64]\n',
     'grid."mm.tlb.entries_4k"', "mm does not exist in the scenario"),
    ('scenario = "tiny.toml"\n[grid]\n"duration.x" = [1]\n',
     'grid."duration.x"', "duration is a value, so duration.x does not exist"),
    ('scenario = "tiny.toml"\n[grid]\n"phases.0.processes.hot_sahre" = [0.1]\n',
     'grid."phases.0.processes.hot_sahre"[0]', "phases[0].processes.hot_sahre: unknown key"),
    ('scenario = "tiny.toml"\n[grid]\nduration = [10, 0]\n',
     "grid.duration[1]", "0: duration: must be in [1, inf]"),
])
def test_bad_sweep_files_say_where(tmp_path: Path, text: str, key: str, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse(tmp_path, text)
    assert exc.value.file == str(tmp_path / "sweep.toml")
    assert exc.value.key == key
    assert message in exc.value.message


def test_programs_variant_needs_attach_entries(tmp_path: Path) -> None:
    bare = TINY[: TINY.index("[[attach]]")]
    with pytest.raises(ScenarioError, match="variants: tiny.toml attaches no program"):
        parse(tmp_path, 'scenario = "tiny.toml"\n', bare)
    assert parse(tmp_path, 'scenario = "tiny.toml"\nvariants = ["builtin"]\n', bare).runs == 1


def test_a_bad_scenario_is_reported_as_itself(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse(tmp_path, 'scenario = "tiny.toml"\n', TINY.replace("duration = 12", "duration = -1"))
    assert exc.value.file == str(tmp_path / "tiny.toml") and exc.value.key == "duration"


def test_set_path_walks_tables_and_arrays() -> None:
    data = {"machine": {"nodes": [{"memory": 1}, {"memory": 2}]}, "duration": 5}
    sw.set_path(data, "machine.nodes.1.memory", 9)
    sw.set_path(data, "machine.nodes.0.tier", "cxl")  # a new last key is allowed
    assert data["machine"]["nodes"] == [{"memory": 1, "tier": "cxl"}, {"memory": 9}]
    with pytest.raises(KeyError):
        sw.set_path(data, "machine.nodes.x.memory", 1)
    with pytest.raises(KeyError):
        sw.set_path(data, "mm.swappiness", 1)


# --- the plan and single runs -------------------------------------------------------


def test_the_plan_orders_runs_and_ships_verified_programs(tmp_path: Path) -> None:
    s = parse(tmp_path, SWEEP)
    tasks = sw.plan(s)
    assert [t.index for t in tasks] == list(range(16))
    assert len({t.key for t in tasks}) == 16
    first = tasks[0]
    assert first.labels == (("phases.0.processes.hot_share", 0.2),
                            ("machine.nodes.0.memory", "64MiB"))
    assert (first.seed, first.variant, first.programs) == (1, "builtin", None)
    assert first.scenario["seed"] == 1
    prog = tasks[1]
    assert prog.variant == "programs" and prog.error == ""
    assert len(prog.programs) == 1 and isinstance(prog.programs[0], Program)
    assert tasks[-1].scenario["machine"]["nodes"][0]["memory"] == "32MiB"
    assert tasks[-1].scenario["phases"][0]["processes"]["hot_share"] == 0.6
    # the sweep's own scenario dict is untouched
    assert s.scenario["machine"]["nodes"][0]["memory"] == "64MiB"
    skip = {tasks[0].key, tasks[5].key}
    assert [t.index for t in sw.plan(s, skip)] == [i for i in range(16) if i not in (0, 5)]
    assert [k.key for k in sw.plan_keys(s)] == [t.key for t in tasks]


def test_a_task_needs_no_file_on_the_worker(tmp_path: Path) -> None:
    (tmp_path / "mine.s").write_text((PROGRAMS / "tier_placement.s").read_text())
    write_sweep(tmp_path, SWEEP.replace('["64MiB", "32MiB"]', '["64MiB"]'),
                TINY.replace('"tier_placement.s"', '"mine.s"'))
    s = sw.load_sweep(tmp_path / "sweep.toml")
    tasks = sw.plan(s)
    shutil.rmtree(tmp_path)  # scenario, sweep and program are gone
    rows = [sw.run_task(t) for t in tasks]
    assert [r["status"] for r in rows] == ["ok"] * len(tasks)
    assert all(r["hooks.placement.attached"] == (r["variant"] == "programs") for r in rows)


def test_rows_hold_grid_values_metrics_and_status(tmp_path: Path) -> None:
    tasks = sw.plan(parse(tmp_path, SWEEP))
    base, prog = sw.run_task(tasks[0]), sw.run_task(tasks[1])
    for row in (base, prog):
        assert row["status"] == "ok" and row["message"] == ""
        assert row["phases.0.processes.hot_share"] == 0.2 and row["seed"] == 1
        assert row["wall_seconds"] > 0
        assert row["tick"] == 11 and isinstance(row["access.references"], int)
        assert all(isinstance(v, int | float | bool) or v is None for v in row.values()
                   if not isinstance(v, str))
        assert not any(isinstance(v, list | dict) for v in row.values())
    assert not base["hooks.placement.attached"]
    assert prog["hooks.placement.attached"] and prog["hooks.placement.calls"] > 0
    # the same workload, another placement: the two variants differ
    assert base["access.mean_distance"] != prog["access.mean_distance"]
    h = base["huge_2m.attempts"]
    assert base["huge_2m.success_rate"] == (round(base["huge_2m.successes"] / h, 6) if h else None)


def test_a_failed_run_is_a_row(tmp_path: Path) -> None:
    # each value is valid alone; together the movable zone exceeds the node
    text = SWEEP.replace('"phases.0.processes.hot_share" = [0.2, 0.6]',
                         '"machine.nodes.0.movable" = ["0MiB", "48MiB"]')
    scen = TINY.replace('{ memory = "64MiB", tier = "dram" }',
                        '{ memory = "64MiB", movable = "0MiB", tier = "dram" }')
    rows = run_all(parse(tmp_path, text, scen), sw.Execution(jobs=1))
    bad = [r for r in rows if r["status"] == "failed"]
    assert len(rows) == 16 and len(bad) == 4
    assert {(r["machine.nodes.0.movable"], r["machine.nodes.0.memory"]) for r in bad} == {
        ("48MiB", "32MiB")}
    assert all("machine.nodes[0].movable: movable zone must be smaller" in r["message"]
               for r in bad)
    assert all("access.mean_distance" not in r for r in bad)


def test_a_rejected_program_fails_its_runs_only(tmp_path: Path) -> None:
    (tmp_path / "bad.s").write_text(".hook mm_placement\nr0 = *(u64 *)(r1 + 4096)\nexit\n")
    text = SWEEP.replace('"machine.nodes.0.memory" = ["64MiB", "32MiB"]',
                         '"attach.0.program" = ["tier_placement.s", "bad.s"]')
    rows = run_all(parse(tmp_path, text), sw.Execution(jobs=1))
    bad = [r for r in rows if r["status"] != "ok"]
    assert {r["attach.0.program"] for r in bad} == {"bad.s"}
    assert {r["variant"] for r in bad} == {"programs"} and len(bad) == 4
    assert all("verifier rejected the program" in r["message"] for r in bad)


# --- results files --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_results_files_round_trip_and_resume_keys(tmp_path: Path, suffix: str) -> None:
    s = parse(tmp_path, SWEEP)
    tasks = sw.plan(s)
    rows = [sw.run_task(t) for t in tasks[:6]]
    rows[2] = sw.failed_row(tasks[2], "worker: lost")
    out = tmp_path / f"r{suffix}"
    sw.write_rows(sw.merge(None, rows, s), out)
    df = sw.read_rows(out, s)
    assert len(df) == 6 and list(df.columns[:8]) == list(s.columns) + ["tick"]
    assert df.loc[2, "status"] == "failed" and df.loc[2, "message"] == "worker: lost"
    assert df.loc[0, "message"] == ""
    done = sw.done_keys(df, s)
    assert done == {t.key for t in tasks[:6]} - {tasks[2].key}
    rest = sw.plan(s, done)
    assert [t.index for t in rest] == [2] + list(range(6, 16))
    more = [sw.run_task(t) for t in rest]
    merged = sw.merge(df, more, s)
    assert len(merged) == 16 and (merged["status"] == "ok").all()
    assert [tuple(x) for x in merged[["seed", "variant"]].values][:4] == [
        (1, "builtin"), (1, "programs"), (2, "builtin"), (2, "programs")]


def test_results_of_another_sweep_are_refused(tmp_path: Path) -> None:
    s = parse(tmp_path, SWEEP)
    other = parse(tmp_path / "..", SWEEP.replace('"machine.nodes.0.memory"', "duration")
                  .replace('["64MiB", "32MiB"]', "[5, 6]"))
    out = tmp_path / "r.csv"
    sw.write_rows(sw.merge(None, [sw.run_task(sw.plan(other)[0])], other), out)
    with pytest.raises(sw.BpfvmError, match="not a results file of this sweep"):
        sw.read_rows(out, s)
    with pytest.raises(sw.BpfvmError, match="unknown results format"):
        sw.check_format(tmp_path / "r.xlsx")


# --- local, LocalCluster and scheduler + worker give the same rows -----------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[sw.Sweep, list[dict]]:
    s = sw.load_sweep(write_sweep(tmp_path_factory.mktemp("sweep")))
    return s, run_all(s, sw.Execution(jobs=1))


def test_in_process_rows_are_reproducible(reference) -> None:
    s, rows = reference
    assert len(rows) == 16 and all(r["status"] == "ok" for r in rows)
    again = run_all(s, sw.Execution(jobs=1))
    assert strip(again) == strip(rows)


def test_local_worker_processes_give_the_same_rows(reference) -> None:
    s, rows = reference
    how = sw.Execution(jobs=2)
    assert strip(run_all(s, how)) == strip(rows)
    assert len(how.workers) == 2


def test_a_local_cluster_by_address_gives_the_same_rows(reference) -> None:
    from distributed import LocalCluster

    s, rows = reference
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        how = sw.Execution(cluster=cluster.scheduler_address)
        assert strip(run_all(s, how)) == strip(rows)
        assert len(how.workers) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def scheduler_and_worker():
    """``dask scheduler`` and ``dask worker`` on loopback; its address."""
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([*dask, "worker", addr, "--nthreads", "1", "--no-nanny",
                                       "--no-dashboard", "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(addr, timeout=5) as client:
                    client.wait_for_workers(1, timeout=max(1, deadline - time.monotonic()))
                break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise
                time.sleep(0.5)
        yield addr
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_a_scheduler_and_worker_pair_gives_the_same_rows(reference, scheduler_and_worker):
    s, rows = reference
    how = sw.Execution(cluster=scheduler_and_worker)
    assert strip(run_all(s, how)) == strip(rows)
    assert len(how.workers) == 1


def test_an_unreachable_scheduler_is_a_clean_error() -> None:
    how = sw.Execution(cluster=f"tcp://127.0.0.1:{free_port()}", connect_timeout=1)
    tasks = [sw.Task(0, (), 1, "builtin", {}, "x", None)]
    t0 = time.monotonic()
    with pytest.raises(sw.BpfvmError, match="cannot connect"):
        sw.execute(tasks, how, lambda t, r: None)
    assert time.monotonic() - t0 < 15
