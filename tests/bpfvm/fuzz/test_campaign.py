"""The campaign: deterministic cases, findings reduced and saved, statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bpfvm.fuzz.campaign import Config, campaign, case_at, summary
from bpfvm.fuzz.mutate import tables
from bpfvm.program import Program


@dataclass
class Verdict:
    accepted: bool
    facts: object = None
    diagnostics: list = field(default_factory=list)


def accept_all(program, hook, **kw) -> Verdict:
    return Verdict(True)


def reject_all(program, hook, **kw) -> Verdict:
    return Verdict(False)


def test_a_case_is_a_function_of_seed_and_index() -> None:
    cfg = Config(seed=4)
    t = tables()
    a = [case_at(cfg, i, [], t).program.insns for i in range(20)]
    b = [case_at(cfg, i, [], t).program.insns for i in range(20)]
    assert a == b
    assert a != [case_at(Config(seed=5), i, [], t).program.insns for i in range(20)]


def test_sound_verifier_stand_in_gives_no_findings() -> None:
    result = campaign(Config(seconds=30, max_cases=40, verifier=reject_all))
    assert result.stats.cases == 40 and result.stats.accepted == 0 and result.reports == []


def test_unsound_verifier_is_caught_and_reduced(tmp_path: Path) -> None:
    seen = []
    cfg = Config(seconds=60, max_cases=30, verifier=accept_all, out=str(tmp_path),
                 reduce_seconds=5)
    result = campaign(cfg, lambda stats, reports, elapsed: seen.append(stats.cases))
    assert result.reports and seen
    for report in result.reports:
        assert len(report.program.insns) <= report.original_slots
        text = Path(report.path).read_text()
        assert text.startswith(f"# bpfvm fuzz finding ({report.finding.oracle}): ")
        assert report.finding.message in text.splitlines()[0]
        back = Program.from_json(json.loads(Path(report.path).with_suffix(".json").read_text()))
        assert back.insns == report.program.insns
    # one reproducer per distinct signature
    sigs = [r.signature for r in result.reports]
    assert len(sigs) == len(set(sigs))
    info = summary(result)
    assert info["findings"] == len(result.reports) and info["accepted"] == info["wellformed"]


def test_same_seed_same_campaign() -> None:
    runs = [campaign(Config(seconds=60, max_cases=25, verifier=accept_all, seed=9,
                            reduce_seconds=1)) for _ in range(2)]
    a, b = ([(r.index, r.finding.oracle) for r in run.reports] for run in runs)
    assert a == b and runs[0].stats.cases == runs[1].stats.cases == 25


def test_stop_after_first_finding() -> None:
    result = campaign(Config(seconds=60, verifier=accept_all, stop_after=1, reduce_seconds=1))
    assert len(result.reports) == 1


def test_parallel_workers_split_the_cases_deterministically() -> None:
    runs = [campaign(Config(seconds=60, max_cases=12, jobs=2, verifier=accept_all, seed=2,
                            reduce_seconds=0.5)) for _ in range(2)]
    assert runs[0].stats.cases == runs[1].stats.cases == 24
    a, b = (sorted((r.index, r.signature) for r in run.reports) for run in runs)
    assert a == b and a
    assert {i % 2 for i, _ in a} <= {0, 1}
