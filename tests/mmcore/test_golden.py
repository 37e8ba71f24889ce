"""Speed must not change what is simulated: short runs of the shipped
scenarios (and a small page-table study) give exactly the metrics recorded
before the speed work (see :mod:`tests.mmcore.golden_cases`)."""

from __future__ import annotations

import pytest

from bpfvm.engine import Tiered
from tests.mmcore.golden_cases import CASES, GOLDEN, SCENARIOS, recorded, run_case


@pytest.fixture(scope="module")
def golden() -> dict:
    assert GOLDEN.exists(), f"{GOLDEN} missing: python -m tests.mmcore.golden_cases --record"
    return recorded()


def _diff(a: object, b: object, path: str = "") -> str | None:
    """The first place where ``a`` and ``b`` differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}/{k}: only in {'recorded' if k in a else 'this run'}"
            d = _diff(a[k], b[k], f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items recorded, {len(b)} now"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = _diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b and type(a) is type(b) else f"{path}: recorded {a!r}, now {b!r}"


def test_cases_cover_every_hook_and_engine(golden: dict) -> None:
    assert set(golden) == set(CASES)
    called = {h for c, r in golden.items() if isinstance(r, dict) and not c.endswith("builtin")
              for h, s in r["metrics"]["hooks"].items() if s["attached"] and s["calls"]}
    assert called >= {"placement", "hugepage", "reclaim", "zone_resize", "lifetime"}


@pytest.mark.parametrize("case", CASES)
def test_same_results_as_recorded(case: str, golden: dict) -> None:
    assert _diff(golden[case], run_case(case)) is None


@pytest.mark.parametrize("name", sorted({c.split("/")[0] for c in CASES}))
def test_engines_agree_in_recorded_values(name: str, golden: dict) -> None:
    interp, jit = golden[f"{name}/interp"], golden[f"{name}/jit"]
    if isinstance(interp, dict):
        interp, jit = dict(interp, engines=None), dict(jit, engines=None)
    assert _diff(interp, jit) is None


@pytest.mark.parametrize("name", [s for s in SCENARIOS if s != "contiguitas"])
def test_tiered_engine_moving_mid_run_gives_the_recorded_results(
        name: str, golden: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` moves each program from the interpreter to the JIT after 40
    runs here (mid-run in every case listed): nothing simulated changes."""
    import bpfvm.engine

    monkeypatch.setattr(bpfvm.engine, "TIER_UP_CALLS", 40)
    moved = []
    tier_up = Tiered.tier_up

    def counted(self: Tiered) -> object:
        if self.jit is None:
            moved.append(self.program.name)
        return tier_up(self)

    monkeypatch.setattr(Tiered, "tier_up", counted)
    got = run_case(f"{name}/auto")
    want = golden[f"{name}/interp"]
    assert moved, "no program reached the JIT: the case does not test a move"
    assert set(got["engines"].values()) == {"auto"}
    assert _diff(dict(want, engines=None), dict(got, engines=None)) is None
