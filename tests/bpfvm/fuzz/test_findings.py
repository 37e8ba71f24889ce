"""Verifier bugs the fuzzer found, and the short fixed-seed campaign CI runs.

Each reproducer in ``tests/data/fuzz_findings/`` is checked by the oracles:
it passes once the verifier handles it (rejects it, or every oracle stays
silent) and is reported as an expected failure, naming the oracle's
message, while the bug is open.  The campaign test fails on any finding
that is not explained by one of those open bugs (:data:`KNOWN`).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

pytest.importorskip("verifier")

from bpfvm.fuzz.builder import Case  # noqa: E402
from bpfvm.fuzz.campaign import Config, campaign, summary  # noqa: E402
from bpfvm.fuzz.mutate import load_corpus  # noqa: E402
from bpfvm.fuzz.oracles import Finding, Oracles  # noqa: E402
from tests.conftest import DATA

FINDINGS = DATA / "fuzz_findings"
CAMPAIGN_SECONDS = 15.0


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


# reproducer name prefix -> what tells a finding of that open bug.  None is open:
# range-branch-to-next (both edges of a jump to the next pc are joined) and
# loop-trip-count-* (the verifier bounds the instructions a run executes) are fixed.
KNOWN: dict[str, Callable[[Case, Finding], bool]] = {}


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
