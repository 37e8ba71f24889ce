"""mmcore.studies.fleet and ``bpfvm mm study contiguitas``."""

from __future__ import annotations

import json

import pytest

from bpfvm.cli import main
from bpfvm.errors import BpfvmError
from mmcore.constants import PAGEBLOCK_PAGES
from mmcore.scenario.schema import parse_scenario
from mmcore.studies import fleet
from tests.mmcore.machines import SLAB, fragment, small_mm


def test_fleet_plan_is_drawn_from_its_seed():
    a = fleet.plan_fleet(12, seed=5, uptime=(40, 90))
    assert a == fleet.plan_fleet(12, seed=5, uptime=(40, 90))
    assert a != fleet.plan_fleet(12, seed=6, uptime=(40, 90))
    assert [s.index for s in a] == list(range(12))
    assert all(s.mix in fleet.MIXES and 40 <= s.uptime <= 90 for s in a)
    assert len({s.seed for s in a}) == 12 and len({s.mix for s in a}) > 1


@pytest.mark.parametrize("bad", [dict(n=0), dict(n=2, uptime=(50, 40)),
                                 dict(n=2, uptime=(5, 10))])
def test_fleet_plan_refuses_bad_input(bad):
    with pytest.raises(BpfvmError):
        fleet.plan_fleet(**bad)


def test_both_sides_are_valid_scenarios_differing_only_in_the_region():
    s = fleet.plan_fleet(3, seed=2)[0]
    linux = parse_scenario(fleet.server_scenario(s, "linux"))
    contig = parse_scenario(fleet.server_scenario(s, "contiguitas"))
    assert linux.attach == () and linux.machine.nodes[0].movable_pages == 0
    assert [a.hook for a in contig.attach] == ["zone_resize"]
    node = contig.machine.nodes[0]
    assert node.pages == linux.machine.nodes[0].pages
    assert 0.85 < node.movable_pages / node.pages <= 0.9
    assert linux.phases == contig.phases and linux.seed == contig.seed == s.seed
    with pytest.raises(BpfvmError, match="unknown variant"):
        fleet.server_scenario(s, "other")


def test_server_metrics_count_blocks_and_taint_as_an_independent_count_does():
    mm = small_mm(pages=4 * PAGEBLOCK_PAGES)
    # one unmovable page in the second pageblock, the rest free
    pfn = mm.pa.alloc(0, 0, SLAB)
    assert pfn >= 0
    got = fleet.server_metrics(mm)
    assert got["pageblocks"] == 4
    assert got["clean_2m_share"] == 0.75  # 3 of 4 pageblocks hold no unmovable page
    assert got["free_2m_blocks"] == 3  # the tainted one cannot be a free 2 MiB block
    assert got["free_2m_after_compaction"] == 3 and got["free_2m_share_after_compaction"] == 0.75
    assert got["thp_coverage"] is None and got["tlb_misses_per_1k"] is None


def test_a_fragmented_machine_has_no_free_2m_block():
    mm = small_mm(pages=4 * PAGEBLOCK_PAGES)
    fragment(mm)
    got = fleet.server_metrics(mm)
    assert got["free_2m_blocks"] == 0 and got["free_2m_after_compaction"] == 0
    assert got["clean_2m_share"] == 0.0


def _row(server, variant, free2m, refs, **kw):
    base = {"server": server, "variant": variant, "status": "ok", "free_2m_blocks": free2m,
            "free_2m_after_compaction": free2m, "clean_2m_share": 0.5,
            "free_2m_share_after_compaction": 0.5, "clean_1g_share": 0.0,
            "free_1g_after_compaction": 0, "thp_coverage": 0.5, "tlb_misses_per_1k": 1.0,
            "walk_refs_per_1k": refs}
    base.update(kw)
    return base


def test_summary_shares_and_speedup_follow_the_stated_model():
    rows = [_row(0, "linux", 0, 4000.0), _row(0, "contiguitas", 5, 2000.0),
            _row(1, "linux", 3, 1000.0), _row(1, "contiguitas", 3, 1000.0),
            {"server": 2, "variant": "linux", "status": "failed"}]
    s = fleet.summarize(rows)
    assert s["failed"] == 1
    assert s["sides"]["linux"]["no_free_2m_share"] == 0.5
    assert s["sides"]["contiguitas"]["no_free_2m_share"] == 0.0
    m = fleet.WALK_MODEL
    t = [m["base_cycles_per_access"] + r * m["cycles_per_walk_ref"] for r in (4, 2)]
    assert s["speedup"]["max"] == round(t[0] / t[1] - 1, 4)
    assert s["speedup"]["min"] == 0.0 and s["speedup"]["servers"] == 2


def test_a_small_fleet_runs_both_sides_on_the_same_offered_work():
    rows = fleet.run_fleet(fleet.plan_fleet(1, seed=3, uptime=(30, 30)))
    assert [r["variant"] for r in rows] == list(fleet.VARIANTS)
    assert all(r["status"] == "ok" for r in rows), rows
    assert rows[0]["offered_bytes"] == rows[1]["offered_bytes"] > 0
    assert rows[0]["clean_1g_share"] <= rows[1]["clean_1g_share"]


def test_a_fleet_on_a_cluster_by_address_gives_the_local_rows():
    """``--cluster ADDR``: the servers run on the cluster's workers, with the
    figures the same servers give in this process (wall times aside)."""
    from distributed import LocalCluster

    from mmcore.studies.sweep import Execution

    servers = fleet.plan_fleet(1, seed=4, uptime=(25, 25))
    here = fleet.run_fleet(servers)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        how = Execution(cluster=cluster.scheduler_address)
        there = fleet.run_fleet(servers, how)
        assert len(how.workers) == 2

    def figures(rows):
        return [{k: v for k, v in r.items() if k != "wall_seconds"}
                for r in rows]
    assert figures(there) == figures(here) and all(r["status"] == "ok" for r in there)


def test_cli_study_prints_json_and_refuses_bad_flags(capsys):
    assert main(["mm", "study", "contiguitas", "--servers", "1", "--jobs", "1",
                 "--uptime", "25-25", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["summary"]["sides"]) == set(fleet.VARIANTS)
    assert len(out["rows"]) == 2 and out["servers"][0]["uptime"] == 25
    assert main(["mm", "study", "contiguitas", "--uptime", "x"]) == 2
    assert "--uptime 'x'" in capsys.readouterr().err
    assert main(["mm", "study", "contiguitas", "--servers", "0", "--jobs", "1"]) == 2
    assert "at least one server" in capsys.readouterr().err
