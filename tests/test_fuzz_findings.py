"""Verifier bugs the fuzzer found, and the short fixed-seed campaign CI runs.

Each reproducer in ``tests/data/fuzz_findings/`` is checked by the oracles:
it passes once the verifier handles it (rejects it, or every oracle stays
silent) and is reported as an expected failure, naming the oracle's
message, while the bug is open.  The campaign test fails on any finding
that is not explained by one of those open bugs (:data:`KNOWN`).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

pytest.importorskip("verifier")

from bpfvm import isa  # noqa: E402
from bpfvm.fuzz import Config, campaign, summary  # noqa: E402
from bpfvm.fuzz_gen import Case  # noqa: E402
from bpfvm.fuzz_mutate import load_corpus  # noqa: E402
from bpfvm.fuzz_oracles import Finding, Oracles  # noqa: E402

FINDINGS = Path(__file__).parent / "data" / "fuzz_findings"
CAMPAIGN_SECONDS = 15.0
MAX_TRIPS = 1_000_000  # loops the issue wants accepted go up to this many trips


def _cases() -> list[Case]:
    cases, skipped = load_corpus([FINDINGS])
    assert not skipped, skipped
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.program.name)
def test_reproducer(case: Case) -> None:
    header = case.program.name
    out = Oracles().check(case, random.Random(0))
    assert out.wellformed
    if out.finding is not None:
        pytest.xfail(f"open verifier bug ({header}): {out.finding}")


def _branch_to_next(case: Case, finding: Finding) -> bool:
    """range-branch-to-next.s: a wrong claim right after a jump to the next pc."""
    m = re.match(r"pc (\d+):", finding.message)
    if finding.oracle != "range" or not m:
        return False
    pc = int(m.group(1))
    insns = case.program.insns
    return any(0 <= p < len(insns) and insns[p].spec is not None
               and insns[p].spec.kind is isa.Kind.JCOND and p + 1 + insns[p].off == pc
               and insns[p].off == 0 for p in range(pc))


def _huge_trip_count(case: Case, finding: Finding) -> bool:
    """loop-trip-count-*.s: a loop accepted with more than MAX_TRIPS trips."""
    if finding.oracle != "fault" or "budget" not in finding.message:
        return False
    oracles = Oracles()
    verdict, _ = oracles.verify(case)
    loops = getattr(getattr(verdict, "facts", None), "loops", None) or {}
    return any(not isinstance(t, int) or t > MAX_TRIPS for _r, t in loops.values())


# reproducer name prefix -> what tells a finding of that open bug
KNOWN = {"range-branch-to-next": _branch_to_next, "loop-trip-count": _huge_trip_count}


def test_known_bug_classifiers_match_their_reproducers() -> None:
    for case in _cases():
        finding = Oracles().check(case, random.Random(0)).finding
        if finding is not None:
            match = next(f for prefix, f in KNOWN.items() if case.program.name.startswith(prefix))
            assert match(case, finding)


def test_fixed_seed_campaign_finds_nothing_new() -> None:
    def unexplained(case: Case, finding: Finding, inputs: str) -> bool:
        return not any(match(case, finding) for match in KNOWN.values())

    result = campaign(Config(seconds=CAMPAIGN_SECONDS, seed=1, jobs=2, confirm=unexplained,
                             jit_every=50, reduce_seconds=5))
    info = summary(result)
    assert result.stats.cases > 0 and result.stats.accepted > 0, info
    assert not result.reports, "\n\n".join(r.text for r in result.reports)
