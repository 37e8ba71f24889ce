"""``bpfvm mm run/compare`` and ``bpfvm demo``: outputs, JSON, exit codes,
clean messages for bad scenarios and rejected programs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bpfvm.cli import build_parser, main

TINY = """\
name = "tiny"
seed = 3
duration = 20
sample_every = 5

[machine]
nodes = [ {{ memory = "64MiB", movable = "32MiB" }} ]

[baseline.machine]
nodes = [ {{ memory = "64MiB" }} ]

[[phases]]
[phases.processes]
arrival_rate = 0.5
max_processes = 3
lifetime = [5, 15]
size = ["4MiB", "12MiB"]
huge = {{ none = 1, thp = 1 }}
faults_per_tick = 64
accesses_per_tick = 8
[phases.kernel]
slab_rate = 2
netbuf_rate = 2
{attach}
"""

ATTACH = '\n[[attach]]\nhook = "{hook}"\nprogram = "{program}"\n'


def scenario(tmp_path: Path, attach: str = "", name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(TINY.format(attach=attach))
    return path


def resize(tmp_path: Path) -> Path:
    return scenario(tmp_path, ATTACH.format(hook="zone_resize", program="contiguitas_resize.s"))


def test_run_prints_tables_and_writes_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.json"
    assert main(["mm", "run", str(resize(tmp_path)), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tiny (seed 3, 20 ticks" in text and "zone_resize" in text
    results = json.loads(out.read_text())
    assert results["engines"] == {"zone_resize": "auto"}  # the default engine
    assert results["metrics"]["hooks"]["zone_resize"]["attached"]
    assert len(results["series"]) == 5


def test_run_engine_and_no_attach(tmp_path: Path, capsys) -> None:
    path = resize(tmp_path)
    assert main(["mm", "run", str(path), "--engine", "jit", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["engines"] == {"zone_resize": "jit"}
    assert main(["mm", "run", str(path), "--no-attach", "--json", "-"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["engines"] == {} and not r["metrics"]["hooks"]["zone_resize"]["attached"]


def test_run_check_mode(tmp_path: Path, capsys) -> None:
    assert main(["mm", "run", str(resize(tmp_path)), "--check", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["faults"] > 0


BAD_PROGRAM = ".hook zone_resize\n    r0 = *(u64 *)(r1 + 0)\n    exit\n"  # unbounded r0


@pytest.mark.parametrize(("attach", "files", "code", "message"), [
    (ATTACH.format(hook="zone_resize", program="bad.s"), {"bad.s": BAD_PROGRAM}, 1,
     "tiny.toml: attach[0]: bad.s: verifier rejected the program:"),
    (ATTACH.format(hook="zone_resize", program="nope.s"), {}, 2,
     "tiny.toml: attach[0]: program nope.s: no such file"),
    (ATTACH.format(hook="placement", program="contiguitas_resize.s"), {}, 2,
     "attach[0]: contiguitas_resize.s is written for hook 'zone_resize', attached to "
     "'placement'"),
    (ATTACH.format(hook="zone_resize", program="syntax.s"), {"syntax.s": "r0 = = 1\n"}, 2,
     "tiny.toml: attach[0]: "),
    (ATTACH.format(hook="pt_map", program="x.s"), {}, 2,
     "tiny.toml: attach[0].hook: unknown hook 'pt_map'"),
    ('\n[[attach]]\nhook = "zone_resize"\nprogram = "contiguitas_resize.s"\nengine = "gpu"\n',
     {}, 2, "attach[0].engine: unknown engine 'gpu'"),
    ("\n[mm]\nswappiness = 900\n", {}, 2, "tiny.toml: mm.swappiness: must be in [0, 200]"),
    ("\n[[phases]]\n[phases.processes]\ntouch_huge = 1\n", {}, 2,
     "tiny.toml: phases[1].processes.touch_huge: expected true or false, got 1"),
])
def test_bad_attachments_and_scenarios(tmp_path: Path, capsys, attach: str,
                                       files: dict[str, str], code: int, message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert main(["mm", "run", str(scenario(tmp_path, attach))]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_rejection_names_the_line_and_the_reason(tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.s").write_text(BAD_PROGRAM)
    main(["mm", "run", str(scenario(tmp_path, ATTACH.format(hook="zone_resize",
                                                              program="bad.s")))])
    err = capsys.readouterr().err
    assert "bad.s:3: pc 1: return value r0 may be outside [-65536, 65536]" in err


def test_missing_scenario_file(tmp_path: Path, capsys) -> None:
    assert main(["mm", "run", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: (file): " in capsys.readouterr().err


def test_compare_prints_both_sides_and_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "c.json"
    assert main(["mm", "compare", str(resize(tmp_path)), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "built-in" in text and "programs" in text and "reclaim scanned" in text
    assert "built-in: 64 MiB dram (0% movable zone)" in text
    cmp = json.loads(out.read_text())
    assert cmp["baseline"]["machine"]["nodes"][0]["movable_pages"] == 0
    assert cmp["programs"]["machine"]["nodes"][0]["movable_pages"] == 8192
    assert cmp["baseline"]["engines"] == {} and cmp["programs"]["engines"]
    rows = {r["metric"]: r for r in cmp["rows"]}
    assert rows["faults"]["built_in"] == cmp["baseline"]["metrics"]["faults"]


def two_programs(tmp_path: Path) -> Path:
    attach = (ATTACH.format(hook="zone_resize", program="contiguitas_resize.s")
              + ATTACH.format(hook="lifetime", program="lifetime_placement.s"))
    return scenario(tmp_path, attach, "two.toml")


def test_compare_gives_each_program_its_column_and_the_combination_when_asked(
        tmp_path: Path, capsys) -> None:
    path = two_programs(tmp_path)
    assert main(["mm", "compare", str(path), "--json", "-"]) == 0
    cmp = json.loads(capsys.readouterr().out)
    assert list(cmp["sides"]) == ["built-in", "contiguitas_resize.s", "lifetime_placement.s"]
    hooks = [[a["hook"] for a in r["attach"]] for r in cmp["sides"].values()]
    assert hooks == [[], ["zone_resize"], ["lifetime"]]
    offered = {json.dumps(r["metrics"]["workload"]["offered"]) for r in cmp["sides"].values()}
    assert len(offered) == 1 and cmp["workload_mismatches"] == []
    rows = {r["metric"]: r for r in cmp["rows"]}
    assert set(rows["faults"]["sides"]) == set(cmp["sides"])

    assert main(["mm", "compare", str(path), "--combined"]) == 0
    text = capsys.readouterr().out
    assert "all programs" in text and "lifetime_placement.s" in text
    assert "offered work, identical on every side: processes started" in text


def test_combined_needs_two_programs(tmp_path: Path, capsys) -> None:
    assert main(["mm", "compare", str(resize(tmp_path)), "--combined"]) == 2
    assert "--combined needs two or more programs" in capsys.readouterr().err


def test_compare_needs_programs(tmp_path: Path, capsys) -> None:
    assert main(["mm", "compare", str(scenario(tmp_path))]) == 2
    assert "attaches no program; nothing to compare" in capsys.readouterr().err


def test_plot_without_matplotlib_is_a_clean_error(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["mm", "compare", str(resize(tmp_path)), "--plot", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "Traceback" not in err


def test_plot_writes_a_file(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "p.png"
    assert main(["mm", "compare", str(resize(tmp_path)), "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_demo_runs_the_default_scenario(tmp_path: Path, capsys, monkeypatch) -> None:
    import mmcore.scenario.runner

    path = resize(tmp_path)
    monkeypatch.setattr(mmcore.scenario.runner, "default_scenario_path", lambda: path)
    assert main(["demo"]) == 0
    text = capsys.readouterr().out
    assert "contiguitas_resize.s on zone_resize" in text and "change" in text
    assert "offered work, identical on every side" in text
    assert "Local accesses differ" in text and "region MiB" in text and "resizes" in text


def test_mm_without_subcommand_prints_help(capsys) -> None:
    assert main(["mm"]) == 2
    assert "run" in capsys.readouterr().out


def test_mm_subcommands_registered() -> None:
    parser = build_parser()
    mm = parser._subparsers._group_actions[0].choices["mm"]
    names = set(mm._subparsers._group_actions[0].choices)
    assert {"run", "compare"} <= names
    try:
        import bpfvm.cli.mm_pagetables  # noqa: F401
    except ModuleNotFoundError:
        return
    assert len(names) > 2  # the page-table subcommand registered itself


def test_touch_huge_touches_whole_pages(tmp_path: Path) -> None:
    import tomllib

    from mmcore.scenario.runner import run_scenario

    data = tomllib.loads(TINY.format(attach=""))
    data["phases"][0]["processes"].update(huge={"thp": 1}, faults_per_tick=2, lifetime=[19, 19])
    four_k = run_scenario(data, attach=False)["metrics"]
    data["phases"][0]["processes"]["touch_huge"] = True
    whole = run_scenario(data, attach=False)["metrics"]
    # two faults a tick: two 2 MiB pages instead of 8 KiB of the first one
    assert whole["huge_2m"]["successes"] > 2 * four_k["huge_2m"]["successes"]


RECLAIM_NOBODY = """\
.hook reclaim
    r2 = 99999
    *(u32 *)(r1 + 52) = r2      # target_pid: a process that does not exist
    r0 = 50
    exit
"""

PRESSURE = """\
name = "pressure"
seed = 5
duration = 40
[machine]
nodes = [ { memory = "64MiB" } ]
[[phases]]
[phases.processes]
arrival_rate = 0.5
max_processes = 3
lifetime = [20, 40]
size = ["16MiB", "32MiB"]
huge = { none = 1 }
faults_per_tick = 256
accesses_per_tick = 16
[phases.file]
files = 1
file_size = "64MiB"
reads_per_tick = 512
[[attach]]
hook = "reclaim"
program = "nobody.s"
"""


def test_reclaim_target_of_no_process_is_counted_as_a_fallback(tmp_path: Path, capsys) -> None:
    (tmp_path / "nobody.s").write_text(RECLAIM_NOBODY)
    path = tmp_path / "pressure.toml"
    path.write_text(PRESSURE)
    assert main(["mm", "run", str(path), "--json", "-"]) == 0
    hooks = json.loads(capsys.readouterr().out)["metrics"]["hooks"]["reclaim"]
    assert hooks["calls"] > 0
    assert hooks["fallbacks"] == hooks["calls"] and hooks["errors"] == 0


PLACEMENT_PROGRAM = ".hook placement\n    r0 = 0\n    exit\n"  # always node 0


def test_run_prints_what_the_scenario_shows(tmp_path: Path, capsys) -> None:
    (tmp_path / "node0.s").write_text(PLACEMENT_PROGRAM)
    path = scenario(tmp_path, ATTACH.format(hook="placement", program="node0.s"))
    assert main(["mm", "run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "random memory references" in out and "local share" in out
    assert "mean node distance" in out
    line = next(x for x in out.splitlines() if x.startswith("placement: "))
    assert "local accesses 100.0%" in line and "mean access distance 10" in line


def test_check_says_invariants_held(tmp_path: Path, capsys) -> None:
    assert main(["mm", "run", str(resize(tmp_path)), "--check"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "invariants held: every MM invariant checked after each of 20 ticks"
    assert main(["mm", "run", str(resize(tmp_path))]) == 0
    assert "invariants held" not in capsys.readouterr().out
    # with the JSON on stdout, the verdict goes to stderr
    assert main(["mm", "run", str(resize(tmp_path)), "--check", "--json", "-"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)
    assert "invariants held" in captured.err


def test_check_reports_a_broken_invariant(tmp_path: Path, capsys, monkeypatch) -> None:
    from mmcore.errors import InvariantError
    from mmcore.mm import MM

    def broken(self) -> None:
        raise InvariantError("free list of node0/normal order 3 holds a used page")

    monkeypatch.setattr(MM, "check", broken)
    assert main(["mm", "run", str(resize(tmp_path)), "--check"]) == 1
    err = capsys.readouterr().err
    assert "tiny.toml: invariant violated at tick 0: free list of node0/normal" in err
    assert "Traceback" not in err
