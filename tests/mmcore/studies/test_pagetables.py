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
    assert cfg.tables == ("radix", "hashed", "learned", "ecpt", "ecpt_unclustered", "lvm")
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


def test_cache_stream_and_accesses_are_configured():
    cfg = parse_config({**GOOD, "stream": "chase", "accesses": 50,
                        "cache": {"l2_size": "1MiB", "dram_cycles": 300}})
    assert (cfg.stream, cfg.accesses, cfg.cache.dram) == ("chase", 50, 300)
    assert cfg.cache.levels[1].size == 1 << 20 and cfg.cache.levels[1].latency == 14
    for bad, key in (({"stream": "zig"}, "stream"), ({"cache": {"l4_size": 1}}, "cache.l4_size"),
                     ({"cache": {"l1_cycles": 0}}, "cache.l1_cycles")):
        with pytest.raises(ScenarioError, match=f"s.toml: {key}: "):
            parse_config({**GOOD, **bad}, "s.toml")


@pytest.fixture(scope="module")
def latency_rows():
    lay = VmaLayout("d", "", (VmaSpec(8 << 20, "none", 1.0),))
    cfg = StudyConfig((lay,), ("radix", "ecpt", "ecpt_unclustered", "lvm"), 1 << 30, 100,
                      accesses=3000,
                      stream="chase")
    return {t: measure(lay, t, cfg) for t in cfg.tables}


def test_cuckoo_probes_overlap_and_radix_levels_add_up(latency_rows):
    radix, ecpt = latency_rows["radix"], latency_rows["ecpt"]
    assert radix.walks > 1000 and ecpt.walks == radix.walks  # same stream, same TLB
    assert ecpt.refs_walk == 3.0  # three ways, the table registers free
    assert ecpt.cyc_p99 <= 250  # one step: never more than one DRAM latency
    assert 1.0 < radix.refs_walk <= 4.0
    assert 0 < ecpt.xlat_share < 1 and 0 < radix.xlat_share < 1


def test_clustered_entries_halve_the_dense_table(latency_rows):
    ecpt, flat = latency_rows["ecpt"], latency_rows["ecpt_unclustered"]
    assert ecpt.walks == flat.walks and flat.refs_walk == 3.0
    # a line holds 8 pages' PTEs clustered, 4 pages' (tag, PTE) pairs unclustered
    assert ecpt.extra["live_kib"] < 0.6 * flat.extra["live_kib"]
    assert ecpt.rebuild_cyc_per_fault < flat.rebuild_cyc_per_fault


def test_resizes_are_counted_as_moved_lines(latency_rows):
    ecpt, radix = latency_rows["ecpt"], latency_rows["radix"]
    assert ecpt.extra["resizes"] >= 3 and ecpt.rebuild_cyc_per_fault > 0
    assert radix.rebuild_cyc_per_fault == 0
    assert 0 < ecpt.extra["live_kib"] <= ecpt.pt_pages * 4  # live tables fit the regions
    assert ecpt.regions == f"3x{ecpt.region_kib}"  # one region per way


def test_lvm_walks_one_line_with_its_models_cached(latency_rows):
    lvm, radix = latency_rows["lvm"], latency_rows["radix"]
    assert lvm.walks == radix.walks
    assert 1.0 <= lvm.refs_walk < 1.1 and lvm.cyc_p99 <= 250
    assert lvm.refs_nopwc > lvm.refs_pwc  # without the model cache, the index lines count


def test_lvm_retrains_leaves_as_pages_come_and_counts_them(latency_rows):
    lvm = latency_rows["lvm"]
    assert lvm.extra["leaf_retrains"] > 0 and lvm.rebuild_cyc_per_fault > 0
    assert lvm.retrains_per_mfault == round(lvm.extra["leaf_retrains"] * 1e6 / 2048)
    count, kib = lvm.regions.split("x")
    assert int(kib) == lvm.region_kib and lvm.pt_pages == int(count) * lvm.region_kib // 4
