"""Documentation generated from the code it describes: the scenario schema
(``bpfvm mm schema``, ``docs/scenario-schema.md``) and ``bpfvm hooks``."""

from __future__ import annotations

import json

import pytest

from bpfvm.cli import main
from mmcore.scenario import schema
from tests.conftest import ROOT

SCHEMA_DOC = ROOT / "docs" / "scenario-schema.md"


def test_schema_doc_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mm", "schema"]) == 0
    printed = capsys.readouterr().out
    assert SCHEMA_DOC.read_text() == printed, (
        "docs/scenario-schema.md is stale: bpfvm mm schema > docs/scenario-schema.md")


def test_schema_lists_every_key_the_parser_reads() -> None:
    keys = {k.key: k for k in schema.schema_keys()}
    # every documented key is one the parser reads, and the reverse (schema_keys
    # raises for a key without documentation)
    assert set(schema.KEY_DOCS) == set(keys)
    assert keys["duration"].default == "required"
    assert keys["phases[].processes.size"].default == "[32MiB, 256MiB]"
    assert keys["phases[].processes.size"].unit == "bytes"
    assert keys["mm.swappiness"].type == "integer in [0, 200]"
    assert keys["phases[].processes.huge"].default == "{ thp = 1 }"
    assert keys["phases[].kernel.slab_reclaimable_share"].default == "0.5"


def test_a_key_the_parser_reads_without_docs_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = dict(schema.KEY_DOCS)
    del docs["mm.swappiness"]
    monkeypatch.setattr(schema, "KEY_DOCS", docs)
    with pytest.raises(KeyError, match="mm.swappiness"):
        schema.schema_keys()


def test_schema_defaults_are_the_parsers() -> None:
    """The defaults shown are what parsing a minimal file gives."""
    sc = schema.parse_scenario({"duration": 5, "machine": {"nodes": [{"memory": "4MiB"}]},
                                "phases": [{}]})
    keys = {k.key: k.default for k in schema.schema_keys()}
    assert keys["mm.swappiness"] == str(sc.swappiness)
    assert keys["mm.tlb.entries_1g"] == str(sc.tlb.entries_1g)
    assert keys["phases[].processes.max_processes"] == str(sc.phases[0].processes.max_processes)
    assert keys["phases[].file.file_size"] == "64MiB" == \
        f"{sc.phases[0].file.file_size >> 20}MiB"


def test_schema_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mm", "schema", "--json"]) == 0
    keys = json.loads(capsys.readouterr().out)
    assert {"key", "type", "unit", "default", "meaning"} == set(keys[0])
    assert any(k["key"] == "attach[].engine" for k in keys)


def test_schema_does_not_change_parsing() -> None:
    """Recording keys for the documentation leaves the parser as it was."""
    assert schema._RECORD is None
    schema.schema_keys()
    assert schema._RECORD is None


# ---- bpfvm hooks ----------------------------------------------------------------------
HOOKS_DOC = ROOT / "docs" / "hooks.md"


def test_hooks_doc_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hooks", "--markdown"]) == 0
    assert HOOKS_DOC.read_text() == capsys.readouterr().out, (
        "docs/hooks.md is stale: bpfvm hooks --markdown > docs/hooks.md")


def test_every_helper_a_hook_may_call_is_documented() -> None:
    from bpfvm.cli.hooks import HELPER_DOCS
    from mmcore.hooks.helpers import policy_helpers
    from mmcore.hooks.specs import HOOKS

    table = {s.name: s for s in policy_helpers()}
    for hook in HOOKS.values():
        for name in hook.helpers:
            assert name in HELPER_DOCS, f"helper {name} (hook {hook.name}) undocumented"
            args, returns, errors = HELPER_DOCS[name]
            assert len(args) == len(table[name].args), name
            assert returns and errors


def test_every_argument_kind_is_described() -> None:
    from bpfvm.cli.hooks import ARG_KINDS
    from bpfvm.helpers import Arg

    assert {a.value for a in Arg} == set(ARG_KINDS)


def test_hooks_json_has_signatures_and_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hooks", "reclaim", "--json"]) == 0
    (hook,) = json.loads(capsys.readouterr().out)
    assert "r0 outside [0, 100]" in hook["out_of_contract"]
    assert "target_pid" in hook["out_of_contract"] and "fallback" in hook["out_of_contract"]
    sig = {h["name"]: h for h in hook["helper_signatures"]}
    assert sig["map_update_elem"]["signature"] == "map_update_elem(map, key, value, flags)"
    assert "-EEXIST" in sig["map_update_elem"]["errors"]
    assert sig["mm_proc_rss"]["needs_mm_core"]
    assert sig["map_lookup_elem"]["args"][1]["requires"].startswith("pointer to key_size")


def test_hooks_text_shows_contract_objects_and_helpers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hooks", "pt_lookup"]) == 0
    out = capsys.readouterr().out
    assert "outside the contract: a pointer that is not a PTE slot" in out
    assert "object region:" in out and ".object region SIZE" in out
    assert "map_lookup_elem(map, key)" in out and "NULL when the key is absent" in out
