"""Scenario parsing: defaults, sizes and `file: key: message` errors."""

import pytest

from mmcore.errors import ScenarioError
from mmcore.scenario.runner import default_scenario_path
from mmcore.scenario.schema import load_scenario, parse_scenario, parse_size

BASE = {"duration": 10, "machine": {"nodes": [{"memory": "64MiB", "movable": "32MiB"}]}}


def with_(**kw):
    d = {k: v for k, v in BASE.items()}
    d.update(kw)
    return d


def test_sizes():
    assert parse_size("2GiB") == 2 << 30
    assert parse_size("512 MB") == 512 << 20
    assert parse_size(4096) == 4096
    with pytest.raises(ValueError):
        parse_size("lots")


def test_minimal_scenario_and_defaults():
    sc = parse_scenario(with_(), "s.toml")
    assert sc.machine.nodes[0].pages == 16384 and sc.machine.nodes[0].movable_pages == 8192
    assert sc.seed == 1 and sc.phases == () and sc.attach == ()


def test_slab_and_balance_keys():
    sc = parse_scenario(with_(mm={"scan_balance": "fixed", "check_interval": 8}, phases=[
        {"kernel": {"object_rate": 100, "caches": {"dentry": 3, "kmalloc-1k": 1},
                    "object_lifetime": [2, 90], "object_lifetime_alpha": 1.5}}]), "s.toml")
    k = sc.phases[0].kernel
    assert (sc.scan_balance, sc.check_interval) == ("fixed", 8)
    assert k.object_rate == 100 and k.caches == (("dentry", 3.0), ("kmalloc-1k", 1.0))
    assert k.object_lifetime == (2, 90) and k.object_lifetime_alpha == 1.5
    plain = parse_scenario(with_(), "s.toml")
    assert (plain.scan_balance, plain.check_interval) == ("cost", 64)
    assert plain.phases == ()


def test_default_scenario_file_parses():
    sc = load_scenario(default_scenario_path())
    assert sc.name == "default" and len(sc.machine.nodes) == 2


@pytest.mark.parametrize(
    "data, key, words",
    [
        ({"machine": BASE["machine"]}, "duration", "missing"),
        (with_(seeds=1), "seeds", "unknown key"),
        (with_(machine={"nodes": [{"memory": "3MiB"}]}), "machine.nodes[0].memory", "2MiB"),
        (with_(machine={"nodes": [{"memory": "lots"}]}), "machine.nodes[0].memory", "size"),
        (with_(phases=[{"processes": {"size": ["2GiB", "1GiB"]}}]), "phases[0].processes.size",
         "exceeds"),
        (with_(phases=[{"processes": {"huge": {"2g": 1}}}]), "phases[0].processes.huge",
         "unknown page-size"),
        (with_(attach=[{"hook": "nope", "program": "x.s"}]), "attach[0].hook", "unknown hook"),
        (with_(mm={"swappiness": 500}), "mm.swappiness", "must be in"),
        (with_(mm={"scan_balance": "lru"}), "mm.scan_balance", "one of fixed, cost"),
        (with_(mm={"check_interval": 0}), "mm.check_interval", "must be in [1, inf], got 0"),
        (with_(phases=[{"kernel": {"caches": {"kmalloc-7": 1}}}]), "phases[0].kernel.caches",
         "unknown slab cache 'kmalloc-7'"),
        (with_(phases=[{"kernel": {"caches": {"dentry": 0}}}]), "phases[0].kernel.caches",
         "not all be zero"),
        (with_(phases=[{"kernel": {"object_lifetime_alpha": 0}}]),
         "phases[0].kernel.object_lifetime_alpha", "in [0.1, 10.0]"),
    ],
)  # fmt: skip
def test_errors_name_file_key_and_problem(data, key, words):
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(data, "bad.toml")
    assert str(exc.value).startswith(f"bad.toml: {key}: ")
    assert words in str(exc.value)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ScenarioError, match="missing.toml: \\(file\\)"):
        load_scenario(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("duration = = 3")
    with pytest.raises(ScenarioError, match="bad.toml: \\(toml\\)"):
        load_scenario(bad)
