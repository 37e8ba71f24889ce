"""Tests of mmcore.studies.pagetables: configuration parsing and the measurements."""


import pytest

from mmcore.errors import ScenarioError
from mmcore.studies.pagetables import (
    DEFAULT_CONFIG,
    StudyConfig,
    VmaLayout,
    VmaSpec,
    load_config,
    measure,
    parse_config,
    run_study,
)
from tests.conftest import DATA

TINY = DATA / "pt" / "tiny.toml"


def test_default_config_parses():
    cfg = load_config(DEFAULT_CONFIG)
    assert [lay.name for lay in cfg.layouts] == ["dense", "sparse", "small_vmas", "mixed_huge"]
    assert cfg.tables == ("radix", "hashed", "learned")
    assert cfg.layouts[2].vmas == (VmaSpec(32 << 10, "none", 1.0, 1024),)


GOOD = {"layout": [{"name": "x", "vma": [{"size": "1MiB"}]}]}


@pytest.mark.parametrize("data, key, message", [
    ({}, "layout", "expected at least one [[layout]] table"),
    ({**GOOD, "walk": 3}, "walk", "unknown key"),
    ({**GOOD, "tables": ["radix", "btree"]}, "tables", "expected one of radix, hashed, learned"),
    ({"layout": [{"name": "x"}]}, "layout[0].vma", "expected a list of VMA tables"),
    ({"layout": [{"vma": [{"size": 1}]}]}, "layout[0].name", "missing"),
    ({"layout": [{"name": "x", "vma": [{"size": "1XB"}]}]}, "layout[0].vma[0].size",
     "expected a size"),
    ({"layout": [{"name": "x", "vma": [{"size": 1, "huge": "2m"}]}]}, "layout[0].vma[0].huge",
     "expected one of none, thp, 1g"),
    ({"layout": [{"name": "x", "vma": [{"size": 1, "touch": 2}]}]}, "layout[0].vma[0].touch",
     "must be in 0.0..1.0"),
    ({**GOOD, "walks": 0}, "walks", "must be in 1.."),
])
def test_config_errors_name_file_and_key(data, key, message):
    with pytest.raises(ScenarioError) as exc:
        parse_config(data, "s.toml")
    assert str(exc.value).startswith(f"s.toml: {key}: ") and message in str(exc.value)


def test_unreadable_and_bad_toml(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("walks = = 3\n")
    with pytest.raises(ScenarioError, match=r"bad\.toml: \(toml\)"):
        load_config(bad)


@pytest.fixture(scope="module")
def rows():
    return {(r.layout, r.table): r for r in run_study(load_config(TINY))}


def test_every_pair_is_measured(rows):
    assert set(rows) == {(lay, t) for lay in ("dense", "mixed")
                         for t in ("radix", "hashed", "learned")}
    assert {r.mapped_pages for r in rows.values() if r.layout == "dense"} == {256}


def test_radix_walks_cost_four_references_without_the_pwc(rows):
    dense = rows["dense", "radix"]
    assert dense.refs_nopwc == 4.0 and dense.refs_pwc == 1.0
    assert dense.region_order == 0 and dense.pt_pages == 4  # PGD, PUD, PMD, PTE pages


def test_hashed_walks_cost_one_line_when_only_4k_pages(rows):
    assert rows["dense", "hashed"].refs_nopwc == 1.0


def test_program_tables_need_a_contiguous_region(rows):
    for table in ("hashed", "learned"):
        r = rows["dense", table]
        assert r.region_kib == r.pt_pages * 4 and r.region_order == (r.pt_pages - 1).bit_length()


def test_learned_with_its_cache_is_near_one_line(rows):
    assert rows["dense", "learned"].refs_pwc == 1.0
    assert rows["dense", "learned"].refs_nopwc > 3


def test_mixed_pages_are_counted_by_size(rows):
    r = rows["mixed", "radix"]
    assert r.mapped_pages == 4 + 3 * 32 + 1  # 2 MiB pages, half of three 256 KiB VMAs, 1 GiB
    assert r.mapped_mib == 8 + 3 * 0.125 + 1024


def test_engines_give_the_same_figures():
    cfg = StudyConfig((VmaLayout("d", "", (VmaSpec(1 << 20, "none", 0.5),)),), ("hashed",),
                      1 << 30, 100)
    a, b = measure(cfg.layouts[0], "hashed", cfg), measure(cfg.layouts[0], "hashed", cfg, "jit")
    assert (a.refs_pwc, a.refs_nopwc, a.pt_pages) == (b.refs_pwc, b.refs_nopwc, b.pt_pages)


def test_unknown_layout_filter():
    with pytest.raises(ScenarioError, match="no such layout"):
        run_study(load_config(TINY), layouts=("nope",))
