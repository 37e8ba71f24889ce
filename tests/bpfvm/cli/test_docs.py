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
