"""Plots of a comparison's time series (``bpfvm mm compare --plot``).

:data:`METRICS` lists the sampled metrics a comparison can plot, each with
its axis label and unit.  :func:`panels` keeps those whose series differ
between the built-in run and the programs run (a metric both sides share
says nothing about the programs), and :func:`plot_compare` draws one panel
per kept metric, both sides on common axes: the built-in run dashed with
hollow circles, the programs solid with crosses, slightly transparent, so
that a side hidden under the other stays visible.  Needs matplotlib (the
optional ``plot`` extra); without it :class:`PlotUnavailable` says how to
get it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpfvm.cli.common import write_output
from bpfvm.errors import BpfvmError

PLOT_FORMATS = ("png", "svg", "pdf")
# per side, in order: distinct line, marker and colour, so overlaps stay visible
STYLES = ({"linestyle": "--", "marker": "o", "markerfacecolor": "none", "color": "tab:blue",
           "alpha": 0.8, "linewidth": 2.0, "zorder": 2},
          {"linestyle": "-", "marker": "x", "color": "tab:orange", "alpha": 0.8,
           "linewidth": 1.2, "zorder": 3},
          {"linestyle": ":", "marker": "^", "markerfacecolor": "none", "color": "tab:green",
           "alpha": 0.8, "linewidth": 1.6, "zorder": 4},
          {"linestyle": "-.", "marker": "s", "markerfacecolor": "none", "color": "tab:red",
           "alpha": 0.8, "linewidth": 1.4, "zorder": 5})


def sides(cmp: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(legend label, results) of each side of a comparison, the built-in first."""
    if "sides" in cmp:
        from bpfvm.cli.tables import side_label

        return [("built-in policies" if n == "built-in" else side_label(n), r)
                for n, r in cmp["sides"].items()]
    return [("built-in policies", cmp["baseline"]), ("programs", cmp["programs"])]


@dataclass(frozen=True)
class Metric:
    """One sampled metric: its series key, panel title and y-axis label (with unit)."""

    key: str
    title: str
    ylabel: str
    get: Callable[[dict[str, Any]], float | None]


def _field(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda s: s.get(name)


def _total(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda s: sum(s[name].values()) if isinstance(s.get(name), dict) else None


METRICS: tuple[Metric, ...] = (
    Metric("huge_2m_window_rate", "2 MiB allocations: success per window",
           "successes / attempts (0-1)", _field("huge_2m_window_rate")),
    Metric("huge_1g_window_rate", "1 GiB allocations: success per window",
           "successes / attempts (0-1)", _field("huge_1g_window_rate")),
    Metric("pageblocks_unmovable_share", "pageblocks holding unmovable pages",
           "share of pageblocks (0-1)", _field("pageblocks_unmovable_share")),
    Metric("compaction_pages_migrated", "pages migrated by compaction",
           "pages, cumulative (4 KiB)", _field("compaction_pages_migrated")),
    Metric("compaction_runs", "compaction runs", "runs, cumulative",
           _field("compaction_runs")),
    Metric("normal_pages", "unmovable-capable (normal) zone pages", "pages (4 KiB)",
           _total("normal_pages")),
    Metric("free_pages", "free pages", "pages (4 KiB)", _field("free_pages")),
    Metric("reclaim_scanned", "pages scanned by reclaim", "pages, cumulative (4 KiB)",
           _field("reclaim_scanned")),
    Metric("mean_distance", "mean access distance",
           "node distance (10 = local)", _field("mean_distance")),
    Metric("fragmentation_score", "fragmentation at 2 MiB (sum over zones)",
           "score (0-100 per zone)",
           _total("fragmentation_score")),
    Metric("kernel_pages", "kernel (unmovable) pages", "pages (4 KiB)",
           _field("kernel_pages")),
    Metric("tlb_misses", "TLB misses", "misses, cumulative", _field("tlb_misses")),
    Metric("zone_resizes", "zone resizes", "resizes, cumulative", _field("zone_resizes")),
    Metric("pageblocks_moved", "pageblocks moved between zones", "pageblocks, cumulative",
           _field("pageblocks_moved")),
)


def points(series: list[dict[str, Any]], metric: Metric) -> list[tuple[int, float]]:
    """``(tick, value)`` of every sample where ``metric`` has a value."""
    out = []
    for s in series:
        v = metric.get(s)
        if v is not None:
            out.append((s["tick"], float(v)))
    return out


def differs(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> bool:
    """Whether two series differ: other ticks, or a value apart by more than
    rounding (relative 1e-9)."""
    if [t for t, _ in a] != [t for t, _ in b]:
        return True
    return any(not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
               for (_, x), (_, y) in zip(a, b, strict=True))


def panels(cmp: dict[str, Any]) -> list[Metric]:
    """The metrics whose series differ between the sides (any side from the
    built-in one), in :data:`METRICS` order (a metric no side samples is left out)."""
    out = []
    for m in METRICS:
        first, *rest = (points(r["series"], m) for _, r in sides(cmp))
        if any((first or b) and differs(first, b) for b in rest):
            out.append(m)
    return out


class PlotUnavailable(BpfvmError):
    exit_code = 2


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, or :class:`PlotUnavailable`
    naming the extra to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(
            "--plot needs matplotlib: pip install 'bpfvm[plot]' (or pip install matplotlib)"
        ) from None
    return plt


def plot_compare(cmp: dict[str, Any], out: str | Path) -> Path:
    """Write the comparison's panels to ``out`` (PNG, SVG or PDF by suffix)."""
    plt = pyplot()
    fig = figure(plt, cmp)
    path = Path(out)
    image = io.BytesIO()
    try:
        fig.savefig(image, format=plot_format(str(out)))
    finally:
        plt.close(fig)
    write_output(str(out), image.getvalue(), "--plot")
    return path


def figure(plt: Any, cmp: dict[str, Any]) -> Any:
    """The comparison's figure: one panel per metric of :func:`panels`."""
    shown = panels(cmp)
    cols = min(3, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    every = sides(cmp)[0][1].get("sample_every")
    xlabel = "tick (simulated time step)" if every is None else \
        f"tick (simulated time step; a sample every {every})"
    for ax, m in zip(axes.flat, shown, strict=False):
        for i, (label, r) in enumerate(sides(cmp)):
            pts = points(r["series"], m)
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, label=label, **STYLES[i % len(STYLES)])
        ax.set_title(m.title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(m.ylabel, fontsize=8)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    if not shown:
        axes.flat[0].text(0.5, 0.5, "no plotted metric differs between the built-in\n"
                          "policies and the programs", ha="center", va="center",
                          transform=axes.flat[0].transAxes)
    fig.suptitle(f"{cmp['scenario']} (seed {cmp['seed']}): built-in policies vs programs, "
                 f"{len(shown)} metric{'s' * (len(shown) != 1)} that differ")
    fig.tight_layout()
    return fig


def plot_format(out: str) -> str:
    """The image format of ``--plot OUT`` (by its extension), or an error."""
    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise BpfvmError(f"--plot {out}: name the image .png, .svg or .pdf")
    return fmt
