"""The verifier's data-driven corpus: tests/data/verifier/*.cases.

Each case is assembly text with ``## key: value`` header lines::

    ## case: stack-read-uninit
    ## ctx: 8                    (generic buffer of 8 bytes; or ## hook: NAME)
    ## expect: reject pc 1: read of uninitialised stack at fp-8 size 8
    ## twin: stack-read-init     (the accepted case that differs minimally)
    ## budget: 5                 (optional: verify's budget, or ## insn_limit: N)

A rejection is asserted by its exact first diagnostic (``pc N: message``).
Every rejected case names an accepted twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.hookspec import CtxField, HookSpec, layout
from bpfvm.stdhelpers import standard_helpers
from tests.conftest import DATA
from verifier import verify

DATA = DATA / "verifier"
HELPERS = standard_helpers()
ALL_HELPERS = tuple(h.name for h in HELPERS)

# Test hooks: read-only and writable fields, a region pointer, return ranges.
HOOKS = {
    "policy": HookSpec(
        "policy", "a policy hook", layout(("a", 4), ("b", 4), ("c", 8, True), ("d", 2),
                                          ("e", 2, True), ("f", 1)),
        0, 10, "a decision in [0, 10]", helpers=ALL_HELPERS),
    "signed": HookSpec("signed", "returns -5..5", layout(("x", 8)), -5, 5, "delta",
                       helpers=ALL_HELPERS),
    "nohelpers": HookSpec("nohelpers", "no helper allowed", layout(("x", 8)), 0, 100, "any",
                          helpers=()),
    "pt": HookSpec(
        "pt", "a page-table hook",
        (CtxField("va", 0, 8), CtxField("region", 8, 8, pointer="region"),
         CtxField("region_size", 16, 8)),
        0, 0, "pointer to an 8-byte slot or 0", helpers=ALL_HELPERS,
        returns_pointer="region", objects={"region": "the region"}),
}
OBJECTS = {"region": 4096}


@dataclass
class Case:
    name: str
    file: str
    text: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return "\n".join(self.text) + "\n"


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(DATA.glob("*.cases")):
        current: Case | None = None
        for line in path.read_text().splitlines():
            if line.startswith("## case:"):
                current = Case(line.split(":", 1)[1].strip(), path.name)
                cases.append(current)
            elif line.startswith("## ") and current is not None:
                key, _, value = line[3:].partition(":")
                current.meta[key.strip()] = value.strip()
            elif current is not None:
                current.text.append(line)
    return cases


CASES = load_cases()
BY_NAME = {c.name: c for c in CASES}


def run_case(case: Case, **extra: object):
    program = assemble(case.source, f"{case.name}.s")
    hook = HOOKS[case.meta["hook"]] if "hook" in case.meta else None
    ctx = int(case.meta.get("ctx", "0"))
    kw: dict = {key: int(case.meta[key]) for key in ("budget", "insn_limit")
                if key in case.meta}
    kw.update(extra)
    return verify(program, hook, ctx_size=ctx, helpers=HELPERS, objects=OBJECTS, **kw)


def test_corpus_size_and_twins() -> None:
    assert len(CASES) >= 150
    assert len(BY_NAME) == len(CASES), "case names must be unique"
    for case in CASES:
        expect = case.meta.get("expect", "")
        assert expect == "accept" or expect.startswith("reject "), case.name
        if expect.startswith("reject"):
            twin = case.meta.get("twin")
            assert twin in BY_NAME, f"{case.name}: twin {twin!r} missing"
            assert BY_NAME[twin].meta["expect"] == "accept", f"{case.name}: twin not accepted"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case) -> None:
    verdict = run_case(case)
    expect = case.meta["expect"]
    got = [f"pc {d.pc}: {d.message}" for d in verdict.diagnostics]
    if expect == "accept":
        assert verdict.accepted, f"{case.name}: unexpected rejection: {got}"
        assert verdict.facts is not None
    else:
        assert not verdict.accepted, f"{case.name}: accepted, expected {expect}"
        assert got[0] == expect[len("reject "):], f"{case.name}: {got}"
