"""``mm compare --plot``: which metrics get a panel, and the image written."""

from __future__ import annotations

from pathlib import Path

from bpfvm.cli import plot


def sample(tick: int, **values) -> dict:
    base = {"tick": tick, "huge_2m_window_rate": None, "huge_1g_window_rate": None,
            "pageblocks_unmovable_share": 0.0, "compaction_pages_migrated": 0,
            "compaction_runs": 0, "normal_pages": {"node0/normal": 100},
            "free_pages": 1000, "reclaim_scanned": 0, "mean_distance": None,
            "fragmentation_score": {"node0/normal": 0}, "kernel_pages": 0, "tlb_misses": 0,
            "zone_resizes": 0, "pageblocks_moved": 0}
    return base | values


def comparison(baseline: list[dict], programs: list[dict]) -> dict:
    return {"scenario": "t", "seed": 1, "baseline": {"series": baseline},
            "programs": {"series": programs}}


def keys(cmp: dict) -> list[str]:
    return [m.key for m in plot.panels(cmp)]


def test_identical_sides_get_no_panel() -> None:
    series = [sample(0), sample(10, free_pages=900)]
    assert keys(comparison(series, [dict(s) for s in series])) == []


def test_only_the_metrics_that_differ() -> None:
    base = [sample(0), sample(10, free_pages=900, mean_distance=12.0)]
    progs = [sample(0), sample(10, free_pages=900, mean_distance=10.5,
                                normal_pages={"node0/normal": 60, "node1/normal": 60})]
    assert keys(comparison(base, progs)) == ["normal_pages", "mean_distance"]


def test_a_metric_sampled_on_one_side_only_differs() -> None:
    base = [sample(0), sample(10)]
    progs = [sample(0), sample(10, huge_2m_window_rate=0.5)]
    assert keys(comparison(base, progs)) == ["huge_2m_window_rate"]


def test_rounding_noise_is_not_a_difference() -> None:
    base = [sample(0, pageblocks_unmovable_share=0.1 + 0.2)]
    progs = [sample(0, pageblocks_unmovable_share=0.3)]
    assert keys(comparison(base, progs)) == []


def test_figure_panels_axes_and_distinct_styles() -> None:
    plt = plot.pyplot()
    base = [sample(0), sample(10, tlb_misses=5, kernel_pages=3)]
    progs = [sample(0), sample(10, tlb_misses=5, kernel_pages=4, zone_resizes=1)]
    fig = plot.figure(plt, comparison(base, progs))
    try:
        drawn = [ax for ax in fig.axes if ax.lines]
        assert [ax.get_title() for ax in drawn] == ["kernel (unmovable) pages", "zone resizes"]
        for ax in drawn:
            assert ax.get_xlabel().startswith("tick") and ax.get_ylabel()
            a, b = ax.lines
            assert a.get_linestyle() != b.get_linestyle() and a.get_marker() != b.get_marker()
            assert a.get_alpha() < 1 and b.get_alpha() < 1  # one side under the other shows
    finally:
        plt.close(fig)


def test_png_is_written(tmp_path: Path) -> None:
    out = tmp_path / "cmp.png"
    base = [sample(0), sample(10, free_pages=800)]
    progs = [sample(0), sample(10, free_pages=700)]
    assert plot.plot_compare(comparison(base, progs), out) == out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_is_written_when_nothing_differs(tmp_path: Path) -> None:
    out = tmp_path / "same.png"
    series = [sample(0)]
    plot.plot_compare(comparison(series, series), out)
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_every_side_of_a_split_comparison_gets_its_own_line() -> None:
    plt = plot.pyplot()
    same = [sample(0), sample(10)]
    cmp = {"scenario": "t", "seed": 1,
           "sides": {"built-in": {"series": same}, "a.s": {"series": [dict(s) for s in same]},
                     "b.s": {"series": [sample(0), sample(10, free_pages=10)]}}}
    assert keys(cmp) == ["free_pages"]  # differs on one side only: still a panel
    fig = plot.figure(plt, cmp)
    try:
        (ax,) = [ax for ax in fig.axes if ax.lines]
        assert [line.get_label() for line in ax.lines] == ["built-in policies", "a.s", "b.s"]
        assert len({line.get_marker() for line in ax.lines}) == 3
    finally:
        plt.close(fig)
