"""mmcore.scenario.workload: every side of a comparison is offered the same work."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mmcore.scenario.runner import Runner, compare_scenario
from mmcore.scenario.schema import load_scenario
from mmcore.scenario.workload import KINDS, Ledger, mismatches
from tests.conftest import DATA, PROGRAMS

STRESS = DATA / "mm_stress"


def cut(path: Path, ticks: int):
    sc = load_scenario(path)
    phases = tuple(replace(ph, end=min(ph.end, ticks)) for ph in sc.phases if ph.start < ticks)
    changes = {"duration": ticks, "sample_every": 10, "phases": phases}
    base = replace(sc.baseline, **changes) if sc.baseline is not None else None
    return replace(sc, **changes, baseline=base)


def test_ledger_counts_and_mismatches_name_the_kind_and_sides():
    a, b = Ledger(), Ledger()
    a.count("references", 10, 9)
    b.count("references", 10, 4)
    assert mismatches({"x": a.as_dict(), "y": b.as_dict()}) == []  # completed may differ
    b.count("touched_bytes", 4096, 4096)
    assert mismatches({"x": a.as_dict(), "y": b.as_dict()}) == [
        "offered touched_bytes differ: x 0, y 4,096"]


@pytest.fixture(scope="module")
def demo_sides() -> dict:
    return compare_scenario(cut(PROGRAMS / "default.toml", 70), split=True)


def test_split_comparison_has_one_side_per_program_plus_the_combination(demo_sides):
    sc = load_scenario(PROGRAMS / "default.toml")
    sides = demo_sides["sides"]
    assert list(sides)[0] == "built-in" and list(sides)[-1] == "programs"
    assert len(sides) == len(sc.attach) + 2
    for name, res in sides.items():
        hooks = sorted(a["hook"] for a in res["attach"])
        if name == "built-in":
            assert hooks == []
        elif name == "programs":
            assert hooks == sorted(a.hook for a in sc.attach)
        else:
            (entry,) = res["attach"]
            assert name == Path(entry["program"]).name


def test_every_side_is_offered_identical_work_while_outcomes_differ(demo_sides):
    sides = demo_sides["sides"]
    offered = [r["metrics"]["workload"]["offered"] for r in sides.values()]
    assert all(o == offered[0] for o in offered)
    assert demo_sides["workload_mismatches"] == []
    assert offered[0]["touched_bytes"] > 0 and offered[0]["kernel_allocs"] > 0
    # the policies do change what happens: outcomes differ between sides
    faults = {r["metrics"]["faults"] for r in sides.values()}
    huge = {r["metrics"]["huge_1g"]["successes"] for r in sides.values()}
    assert len(faults) > 1 or len(huge) > 1
    for r in sides.values():
        w = r["metrics"]["workload"]
        assert set(w["offered"]) == set(KINDS)
        assert all(0 <= w["completed"][k] <= w["offered"][k] for k in KINDS)


def test_offered_work_does_not_depend_on_the_programs_under_pressure():
    """A stress scenario where allocations fail and processes are OOM-killed:
    the work offered is the same with and without the programs, what is
    completed is less than offered and differs between the sides."""
    sc = load_scenario(STRESS / "unmovable_churn.toml")
    runs = [Runner(sc, attach=attach).run()["metrics"] for attach in (False, True)]
    work = [m["workload"] for m in runs]
    assert work[0]["offered"] == work[1]["offered"]
    assert all(m["oom_kills"] > 0 for m in runs)
    for w in work:
        assert w["completed"]["processes"] < w["offered"]["processes"]
        assert w["completed"]["touched_bytes"] < w["offered"]["touched_bytes"]
    assert work[0]["completed"] != work[1]["completed"]


def test_the_same_seed_gives_the_same_trace_and_another_seed_another():
    sc = cut(STRESS / "unmovable_churn.toml", 30)
    one = Runner(sc, attach=False).run()["metrics"]["workload"]
    two = Runner(sc, attach=False).run()["metrics"]["workload"]
    other = Runner(replace(sc, seed=sc.seed + 1), attach=False).run()["metrics"]["workload"]
    assert one == two
    assert other["offered"] != one["offered"]
