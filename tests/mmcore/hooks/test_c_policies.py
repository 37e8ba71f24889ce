"""The C policies of programs/ (thp_policy.c, lifetime_placement.c,
hashed_pt.c): verified and run on both engines with the same decisions as
their assembly versions, attached in their scenarios with the same results.
``bpfvm cc`` is tested in tests/bpfvm/cli/test_cc.py."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from bpfvm.load import load, read_programs
from bpfvm.program import Program
from mmcore.hooks.host import MmEnv, policy_helpers
from mmcore.hooks.specs import HOOKS
from mmcore.scenario.runner import compare_scenario
from mmcore.scenario.schema import parse_scenario
from tests.conftest import PROGRAMS
from tests.mmcore.hooks.test_policies import CASES, run_with
from tests.mmcore.machines import small_mm

ENGINES = ["interp", "jit"]
C_POLICIES = ["thp_policy", "lifetime_placement"]


def c_program(name: str) -> Program:
    """The one program of ``programs/NAME.c``, compiled and read by the loader."""
    (program,) = read_programs(PROGRAMS / f"{name}.c", policy_helpers(), hooks=HOOKS)
    return program


def c_engine(name: str, engine: str) -> Any:
    program = c_program(name)
    return load(program, engine=engine, helpers=policy_helpers(), hook=HOOKS[program.hook],
                env=MmEnv(small_mm())).engine


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", C_POLICIES)
def test_c_policy_verifies_for_its_hook(name: str, engine: str) -> None:
    program = c_program(name)
    assert program.name == name and program.hook in HOOKS
    assert load(program, engine=engine, helpers=policy_helpers(),
                hook=HOOKS[program.hook]).verdict.accepted


C_CASES = [c for c in CASES if c[0] in C_POLICIES]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("name", "fields", "expected", "after"), C_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(C_CASES)])
def test_c_policy_decides_as_the_assembly_one(name: str, fields: dict[str, int], expected: int,
                                              after: dict[str, int], engine: str) -> None:
    hook = "hugepage" if name == "thp_policy" else "lifetime"
    r0, ctx = run_with(c_engine(name, engine), hook, fields)
    assert r0 == expected
    for k, v in after.items():
        assert ctx[k] == v


@pytest.mark.parametrize("engine", ENGINES)
def test_c_thp_policy_counts_refusals_in_its_hash_map(engine: str) -> None:
    eng = c_engine("thp_policy", engine)
    for pid in (5, 5, 6):
        run_with(eng, "hugepage", dict(pid=pid, allowed=3, huge_2m=300, free_2m=100))
    run_with(eng, "hugepage", dict(pid=7, allowed=3, free_2m=100))
    (refused,) = eng.maps
    assert refused.name == "refused" and refused.kind == "hash"
    assert {int.from_bytes(k, "little"): int.from_bytes(v, "little")
            for k, v in refused.items()} == {5: 2, 6: 1}


# -- scenarios: the C variant gives the assembly variant's results ---------------
def _scenario(file: str, changes: dict[str, Any]) -> Any:
    path = PROGRAMS / file
    data = tomllib.loads(path.read_text())
    for key, value in changes.items():
        *parents, last = key.split(".")
        d: Any = data
        for p in parents:
            d = d[int(p)] if p.isdigit() else d[p]
        d[last] = value
    return parse_scenario(data, str(path))


def _metrics(cmp: dict) -> dict:
    return cmp["programs"]["metrics"]


@pytest.mark.parametrize(("name", "changes"), [
    ("thp_policy", {"duration": 60}),
    ("lifetime_placement", {"duration": 60, "phases.0.end": 30, "phases.1.start": 30,
                            "phases.1.end": 60}),
])
@pytest.mark.parametrize("engine", ENGINES)
def test_c_scenario_matches_the_assembly_scenario(name: str, changes: dict, engine: str) -> None:
    changes = {**changes, "attach.0.engine": engine}
    asm = compare_scenario(_scenario(f"{name}.toml", changes))
    c = compare_scenario(_scenario(f"{name}_c.toml", changes))
    hook = c["programs"]["attach"][0]["hook"]
    assert c["programs"]["metrics"]["hooks"][hook]["calls"] > 0
    assert _metrics(c) == _metrics(asm)


@pytest.mark.parametrize("engine", ENGINES)
def test_c_hashed_page_table_matches_the_assembly_one(engine: str) -> None:
    from mmcore.studies.pagetables import load_config, measure

    cfg = load_config(PROGRAMS / "pt_study_c.toml")
    assert cfg.tables == ("hashed", "hashed_c")
    lay = next(lay for lay in cfg.layouts if lay.name == "mixed_huge")
    from dataclasses import replace

    cfg = replace(cfg, walks=300)
    rows = [measure(lay, table, cfg, engine) for table in cfg.tables]
    asm, c = ({k: v for k, v in vars(r).items() if k not in ("table", "build_s")} for r in rows)
    assert asm["mapped_pages"] > 0 and c == asm


def test_c_page_table_has_three_sections_sharing_subprograms() -> None:
    from mmcore.pagetables.loading import PtPrograms, region_size_of

    progs = PtPrograms.from_file(PROGRAMS / "hashed_pt.c")
    assert set(progs.templates) == {"pt_map", "pt_unmap", "pt_lookup"}
    for prog in progs.templates.values():
        assert any(i.opcode == 0x85 and i.src == 1 for i in prog.insns)
        assert region_size_of(prog) == 65536
    for prog in progs.for_region(1 << 14).values():
        assert region_size_of(prog) == 1 << 14
