"""Small fixed scenarios whose every metric must stay bit-identical.

Speed work on the MM core and the hook dispatch must not change what is
simulated.  Each case runs a shipped scenario (``programs/*.toml``) cut to
a short duration, with its programs on one engine (``interp``, ``jit``) or
detached (``builtin``), or a small page-table study, and reduces the result
to plain JSON (wall-clock times dropped).  ``tests/data/golden/cases.json``
holds the values recorded before the speed work; the test
(``tests/mmcore/test_golden.py``) compares every case against them.

Record (only when a change is *meant* to change results, and say so in its
commit message)::

    python -m tests.mmcore.golden_cases --record
"""

from __future__ import annotations

import json
import sys
import tomllib
from typing import Any

from tests.conftest import DATA, PROGRAMS

GOLDEN = DATA / "golden" / "cases.json"

# scenario file -> ticks run (long enough to reach the phases that fault,
# reclaim, resize zones and call every attached hook)
SCENARIOS = {
    "default": 100,
    "contiguitas": 60,
    "lifetime_placement": 60,
    "reclaim_policy": 60,
    "thp_policy": 80,
    "tier_placement": 80,
}
# smaller machines where the shipped one would not reach reclaim in time
MACHINES = {"reclaim_policy": [{"memory": "128MiB"}]}
MODES = ("builtin", "interp", "jit")
CASES = [f"{s}/{m}" for s in SCENARIOS for m in MODES] + [
    "pt_study/interp", "pt_study/jit"]

PT_STUDY = {
    "seed": 1, "machine": "1GiB", "walks": 200, "tables": ["radix", "hashed", "learned"],
    "layout": [
        {"name": "dense", "vma": [{"size": "4MiB", "huge": "none", "touch": 1.0}]},
        {"name": "sparse", "vma": [{"size": "1GiB", "huge": "none", "touch": 0.002}]},
        {"name": "mixed_huge", "vma": [
            {"size": "16MiB", "huge": "thp", "touch": 1.0, "count": 2},
            {"size": "2MiB", "huge": "none", "touch": 1.0, "count": 2}]},
    ],
}


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back (string keys, lists)."""
    return json.loads(json.dumps(value))


def run_case(case: str) -> Any:
    """The result of one case, as plain JSON data without wall-clock times."""
    name, mode = case.split("/")
    if name == "pt_study":
        from dataclasses import asdict

        from mmcore.studies.pagetables import parse_config, run_study

        rows = run_study(parse_config(PT_STUDY, "<golden>"), engine=mode)
        out = []
        for r in rows:
            d = asdict(r)
            d.pop("build_s", None)
            out.append(d)
        return _plain(out)
    from mmcore.scenario.runner import run_scenario

    with open(PROGRAMS / f"{name}.toml", "rb") as fh:
        data = tomllib.load(fh)
    data["duration"] = SCENARIOS[name]
    if name in MACHINES:
        data["machine"]["nodes"] = MACHINES[name]
    if mode == "builtin":
        result = run_scenario(data, attach=False)
    else:
        result = run_scenario(data, engine=mode)
    result.pop("wall_seconds")
    result.pop("file")
    return _plain(result)


def recorded() -> dict[str, Any]:
    with open(GOLDEN) as fh:
        return json.load(fh)


def record(cases: list[str]) -> None:
    out = recorded() if GOLDEN.exists() else {}
    for case in cases:
        print(case, file=sys.stderr)
        out[case] = run_case(case)
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] != "--record":
        sys.exit("usage: python -m tests.mmcore.golden_cases --record [CASE ...]")
    record(args[1:] or CASES)
