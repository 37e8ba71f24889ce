"""The policy programs: verified and run on both engines against crafted
contexts, and each one's scenario (reduced to run fast) showing its effect
in the expected direction against the built-in policy."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from bpfvm.asm.assembler import assemble_file
from bpfvm.isa.bits import s64
from bpfvm.load import load
from mmcore.hooks.dispatch import HookPoint
from mmcore.hooks.host import MmEnv, policy_helpers
from mmcore.hooks.specs import HOOKS
from mmcore.scenario.runner import compare_scenario
from mmcore.scenario.schema import parse_scenario
from tests.conftest import PROGRAMS
from tests.mmcore.machines import small_mm

PROGRAMS = PROGRAMS
ENGINES = ["interp", "jit"]
POLICIES = ["contiguitas_resize", "lifetime_placement", "tier_placement", "thp_policy",
            "reclaim_policy"]


def engine_for(name: str, engine: str) -> Any:
    helpers = policy_helpers()
    program = assemble_file(PROGRAMS / f"{name}.s", helpers=helpers)
    return load(program, engine=engine, helpers=helpers, hook=HOOKS[program.hook],
                env=MmEnv(small_mm())).engine


def run_with(engine: Any, hook: str, fields: dict[str, int]) -> tuple[int, dict[str, int]]:
    spec = HOOKS[hook]
    point = HookPoint(spec, lambda *a: 0)
    ctx = point.pack([fields.get(f.name, 0) for f in sorted(spec.fields, key=lambda f: f.offset)])
    r0 = s64(engine.run(ctx))
    after = {f.name: int.from_bytes(ctx[f.offset:f.offset + f.size], "little")
             for f in spec.fields}
    return r0, after


# (program, context fields, expected r0, expected fields after the run)
CASES: list[tuple[str, dict[str, int], int, dict[str, int]]] = [
    # contiguitas_resize: grow by the pages scanned in pageblocks (rounded up, at
    # most 64) within max, shrink by free/4 blocks
    ("contiguitas_resize", dict(scanned_unmovable=100, scanned_movable=10, unmovable_blocks=80,
                                max_blocks=999, min_blocks=1), 1, {}),
    ("contiguitas_resize", dict(scanned_unmovable=1025, unmovable_blocks=80, max_blocks=999),
     3, {}),
    ("contiguitas_resize", dict(scanned_unmovable=100, unmovable_blocks=4, max_blocks=999), 1, {}),
    ("contiguitas_resize", dict(scanned_unmovable=40000, unmovable_blocks=1000,
                                max_blocks=4000), 64, {}),
    ("contiguitas_resize", dict(scanned_unmovable=5000, unmovable_blocks=80, max_blocks=85),
     5, {}),
    ("contiguitas_resize", dict(scanned_unmovable=9, unmovable_blocks=80, max_blocks=80), 0, {}),
    ("contiguitas_resize", dict(scanned_movable=100, unmovable_blocks=80, free_unmovable=30720,
                                min_blocks=1), -15, {}),
    ("contiguitas_resize", dict(scanned_movable=100, unmovable_blocks=80, free_unmovable=20480,
                                min_blocks=1), 0, {}),
    ("contiguitas_resize", dict(scanned_movable=100, unmovable_blocks=1000,
                                free_unmovable=400000, min_blocks=1), -64, {}),
    ("contiguitas_resize", dict(scanned_movable=100, unmovable_blocks=10, free_unmovable=5000,
                                min_blocks=9), -1, {}),
    ("contiguitas_resize", dict(unmovable_blocks=80, free_unmovable=40000), 0, {}),
    # lifetime_placement: user memory and page tables untouched; site 1 is long-lived
    ("lifetime_placement", dict(source=0, site=1), 0, {}),
    ("lifetime_placement", dict(source=1), 0, {}),
    ("lifetime_placement", dict(source=5, site=1), 0, {}),
    ("lifetime_placement", dict(source=4, site=0), 1, {}),
    ("lifetime_placement", dict(source=4, site=1), 2, {}),
    ("lifetime_placement", dict(source=2, site=1), 2, {}),
    ("lifetime_placement", dict(source=3, site=5), 1, {}),
    ("lifetime_placement", dict(source=3, site=33), 1, {}),
    # tier_placement: hot on node 0 while it has room, cold on node 1 while it has room
    ("tier_placement", dict(nr_nodes=1, hint=1000, free_node0=100), 0, {}),
    ("tier_placement", dict(nr_nodes=2, hint=1000, free_node0=10000), 0, {}),
    ("tier_placement", dict(nr_nodes=2, hint=1000, free_node0=100), 1, {}),
    ("tier_placement", dict(nr_nodes=2, hint=0, free_node1=10000), 1, {}),
    ("tier_placement", dict(nr_nodes=2, hint=499, free_node1=8192), 0, {}),
    # thp_policy: 1 GiB only when free, 2 MiB under budget with enough free blocks
    ("thp_policy", dict(pid=5, allowed=7, free_1g=1, free_2m=1000), 2, {}),
    ("thp_policy", dict(pid=5, allowed=7, free_1g=0, free_2m=100), 1, {}),
    ("thp_policy", dict(pid=5, allowed=3, huge_2m=255, free_2m=100), 1, {}),
    ("thp_policy", dict(pid=5, allowed=3, huge_2m=256, free_2m=100), 0, {}),
    ("thp_policy", dict(pid=5, allowed=3, free_2m=31), 0, {}),
    ("thp_policy", dict(pid=5, allowed=1, free_1g=3, free_2m=100), 0, {}),
    # reclaim_policy: file only while the page cache can pay twice; else half, largest only
    ("reclaim_policy", dict(nr_to_reclaim=32, file_active=30, file_inactive=34, largest_pid=77),
     0, dict(target_pid=0)),
    ("reclaim_policy", dict(nr_to_reclaim=32, file_active=10, file_inactive=20, largest_pid=77),
     50, dict(target_pid=77)),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", POLICIES)
def test_each_program_verifies_and_declares_its_hook(name: str, engine: str) -> None:
    helpers = policy_helpers()
    program = assemble_file(PROGRAMS / f"{name}.s", helpers=helpers)
    assert program.hook in HOOKS
    loaded = load(program, engine=engine, helpers=helpers, hook=HOOKS[program.hook])
    assert loaded.verdict.accepted


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("name", "fields", "expected", "after"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_program_decisions(name: str, fields: dict[str, int], expected: int,
                           after: dict[str, int], engine: str) -> None:
    eng = engine_for(name, engine)
    hook = HOOKS[assemble_file(PROGRAMS / f"{name}.s", helpers=policy_helpers()).hook].name
    r0, ctx = run_with(eng, hook, fields)
    assert r0 == expected
    for k, v in after.items():
        assert ctx[k] == v


@pytest.mark.parametrize("engine", ENGINES)
def test_thp_policy_counts_refusals_per_process(engine: str) -> None:
    eng = engine_for("thp_policy", engine)
    for pid in (5, 5, 6):
        run_with(eng, "hugepage", dict(pid=pid, allowed=3, huge_2m=300, free_2m=100))
    run_with(eng, "hugepage", dict(pid=7, allowed=3, free_2m=100))  # granted: not counted
    refused = eng.maps[0]
    count = {int.from_bytes(k, "little"): int.from_bytes(v, "little")
             for k, v in refused.items()}
    assert count == {5: 2, 6: 1}


# --- each program's scenario, reduced, against the built-in policy ----------

def reduced(name: str, changes: dict[str, Any]) -> Any:
    """programs/<name>.toml with dotted-path changes (``phases.0.end``)."""
    path = PROGRAMS / f"{name}.toml"
    data = tomllib.loads(path.read_text())
    for key, value in changes.items():
        *parents, last = key.split(".")
        d: Any = data
        for p in parents:
            d = d[int(p)] if p.isdigit() else d[p]
        d[last] = value
    return parse_scenario(data, str(path))


def both(name: str, changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    cmp = compare_scenario(reduced(name, changes))
    base, pol = cmp["baseline"]["metrics"], cmp["programs"]["metrics"]
    hook = cmp["programs"]["attach"][0]["hook"]
    assert pol["hooks"][hook]["calls"] > 0 and pol["hooks"][hook]["errors"] == 0
    return base, pol


def test_tier_placement_lowers_the_access_distance() -> None:
    base, pol = both("tier_placement", {"duration": 80, "sample_every": 40})
    assert pol["access"]["mean_distance"] < base["access"]["mean_distance"]
    assert pol["access"]["local_share"] > base["access"]["local_share"]


def test_lifetime_placement_leaves_fewer_pinned_pageblocks() -> None:
    base, pol = both("lifetime_placement", {
        "duration": 110, "phases.0.end": 40, "phases.1.start": 40, "phases.1.end": 110})
    assert pol["pageblocks_unmovable_pages"] < base["pageblocks_unmovable_pages"]


def test_reclaim_policy_scans_less_and_swaps_no_more() -> None:
    base, pol = both("reclaim_policy", {
        "duration": 40, "machine.nodes": [{"memory": "256MiB"}],
        "phases.0.processes.size": ["64MiB", "96MiB"], "phases.0.processes.arrival_rate": 0.3,
        "phases.0.processes.faults_per_tick": 512, "phases.0.file.file_size": "128MiB",
        "phases.0.file.reads_per_tick": 1024})
    assert base["reclaim"]["scanned"] > 0
    assert pol["reclaim"]["scanned"] < base["reclaim"]["scanned"]
    assert pol["reclaim"]["swap_out"] <= base["reclaim"]["swap_out"]


def test_thp_policy_avoids_compaction_and_pool_growth() -> None:
    base, pol = both("thp_policy", {"duration": 100})

    def moved(m):  # compaction and 1 GiB range migration for surplus pool pages
        return m["compaction"]["pages_migrated"] + m["hugetlb"]["pages_migrated"]

    assert moved(base) > 0
    assert moved(pol) < moved(base)
    # the policy never makes the pool grow: it takes 1 GiB only from free pool pages
    assert base["hugetlb"]["grown"] > 0 and pol["hugetlb"]["grown"] == 0
