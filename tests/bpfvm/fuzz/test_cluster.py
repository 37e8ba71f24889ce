"""Fuzz campaigns on a Dask cluster: the same cases, statistics and findings
as a local campaign over the same case indexes; clean errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from bpfvm.cli import main
from bpfvm.fuzz.campaign import Config, campaign
from tests.bpfvm.fuzz.test_campaign import accept_all
from tests.conftest import PROGRAMS

distributed = pytest.importorskip("distributed")

from bpfvm.fuzz.cluster import campaign_on_cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as c:
        yield c.scheduler_address


def facts(result) -> tuple:
    s = result.stats
    return (s.cases, s.wellformed, s.accepted, s.runs, s.jit, dict(s.by_oracle),
            [(r.index, r.signature, r.finding.oracle) for r in result.reports])


def test_cluster_campaign_matches_the_local_one(cluster, tmp_path: Path) -> None:
    cfg = Config(seconds=120, seed=5, verifier=accept_all, reduce_seconds=0.5, jit_every=7,
                 corpus=[str(PROGRAMS)])
    local = campaign(Config(**{**cfg.__dict__, "max_cases": 30}))
    seen = []
    remote = campaign_on_cluster(Config(**{**cfg.__dict__, "out": str(tmp_path)}), cluster,
                                 lambda s, r, e: seen.append(s.cases), chunk=7,
                                 total_cases=30)
    assert facts(remote) == facts(local)
    assert remote.stats.cases == 30 and remote.reports and seen[-1] == 30 and len(seen) == 5
    for r in remote.reports:  # reproducers are saved here
        assert Path(r.path).read_text().startswith("# bpfvm fuzz finding")


def test_stop_after_on_the_cluster(cluster) -> None:
    cfg = Config(seconds=60, verifier=accept_all, stop_after=1, reduce_seconds=0.5)
    result = campaign_on_cluster(cfg, cluster, chunk=4)
    assert len(result.reports) >= 1 and result.seconds < 60


def test_fuzz_cli_on_a_cluster(cluster, tmp_path: Path, capsys) -> None:
    rc = main(["fuzz", "--cluster", cluster, "--seconds", "2", "--json", "--corpus",
               str(PROGRAMS), "--out", str(tmp_path), "--jit-every", "0"])
    info = json.loads(capsys.readouterr().out)
    assert rc == (1 if info["findings"] else 0)
    assert info["cases"] > 0 and info["seconds"] < 30


def test_fuzz_cli_unreachable_cluster_exits_2(capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["fuzz", "--cluster", f"tcp://127.0.0.1:{port}", "--timeout", "1",
                 "--seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect" in err and "Traceback" not in err
