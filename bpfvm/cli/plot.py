"""Plots of a comparison's time series (``bpfvm mm compare --plot``).

Draws, for the built-in run and the programs run, the key metrics over
ticks: 2 MiB and 1 GiB allocation success per sample window, the share of
pageblocks holding unmovable pages, pages migrated by compaction, and the
size of the unmovable (normal) zones.  Needs matplotlib (the optional
``plot`` extra); without it :class:`PlotUnavailable` says how to get it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bpfvm.cli.common import write_output
from bpfvm.errors import BpfvmError

PLOT_FORMATS = ("png", "svg", "pdf")

PANELS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("2 MiB success per window", lambda s: s.get("huge_2m_window_rate")),
    ("1 GiB success per window", lambda s: s.get("huge_1g_window_rate")),
    ("pageblocks with unmovable pages (share)", lambda s: s["pageblocks_unmovable_share"]),
    ("pages migrated (cumulative)", lambda s: s["compaction_pages_migrated"]),
    ("unmovable-capable (normal) zone pages", lambda s: sum(s["normal_pages"].values())),
    ("mean access distance", lambda s: s.get("mean_distance")),
)


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
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (title, get) in zip(axes.flat, PANELS, strict=True):
        for side, style in (("baseline", "--"), ("programs", "-")):
            series = cmp[side]["series"]
            pts = [(s["tick"], get(s)) for s in series if get(s) is not None]
            if pts:
                xs, ys = zip(*pts, strict=True)
                label = "built-in" if side == "baseline" else "programs"
                ax.plot(xs, ys, style, marker=".", label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("tick")
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"{cmp['scenario']} (seed {cmp['seed']}): built-in policies vs programs")
    fig.tight_layout()
    path = Path(out)
    image = io.BytesIO()
    try:
        fig.savefig(image, format=plot_format(str(out)))
    finally:
        plt.close(fig)
    write_output(str(out), image.getvalue(), "--plot")
    return path


def plot_format(out: str) -> str:
    """The image format of ``--plot OUT`` (by its extension), or an error."""
    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise BpfvmError(f"--plot {out}: name the image .png, .svg or .pdf")
    return fmt
