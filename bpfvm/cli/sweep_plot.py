"""The plot of a sweep (``bpfvm mm sweep --plot``): each metric against a grid axis.

One panel per metric; in each, one line per variant (and per combination of
the other grid axes' values, if any), the mean over seeds with its 95%
confidence interval (Student's t) as a band.  Without a grid the variants
are the x axis.  Only runs with status ok are drawn.  Needs matplotlib (the
``plot`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfvm.cli.plot import pyplot
from bpfvm.errors import BpfvmError

if TYPE_CHECKING:
    import pandas as pd

    from mmcore.studies.sweep import Sweep

DEFAULT_METRICS = ("access.mean_distance", "access.local_share", "huge_2m.success_rate",
                   "huge_1g.success_rate", "pageblocks_unmovable_pages",
                   "compaction.pages_migrated", "reclaim.scanned", "tlb.refs_per_walk",
                   "oom", "gib_ranges_clean.clean")
SUFFIXES = (".png", ".svg", ".pdf")
# two-sided 95% quantiles of Student's t for 1..30 degrees of freedom
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
       2.060, 2.056, 2.052, 2.048, 2.045, 2.042)



def check_plot(sweep: Sweep, axis: str | None, out: str | Path) -> None:
    """Fail before any run if the plot cannot be drawn as asked."""
    if Path(out).suffix.lower() not in SUFFIXES:
        raise BpfvmError(f"--plot {out}: expected a {', '.join(SUFFIXES)} file")
    if axis is not None and axis not in [a.path for a in sweep.axes]:
        names = ", ".join(a.path for a in sweep.axes) or "none"
        raise BpfvmError(f"--axis {axis}: not a grid axis of the sweep (axes: {names})")
    pyplot()


def x_axis(sweep: Sweep, axis: str | None) -> str | None:
    """The grid axis to draw along: the one asked for, else the first with
    several values, else the first; None without a grid."""
    if axis is not None:
        return axis
    for a in sweep.axes:
        if len(a.values) > 1:
            return a.path
    return sweep.axes[0].path if sweep.axes else None


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    t = T95[n - 2] if n - 2 < len(T95) else 1.960
    return mean, t * math.sqrt(var / n)


def pick_metrics(df: pd.DataFrame, asked: Sequence[str]) -> list[str]:
    numeric = [c for c in df.columns if df[c].dtype.kind in "biuf" and c not in
               ("seed", "wall_seconds")]
    if asked:
        for m in asked:
            if m not in numeric:
                near = [c for c in numeric if m in c][:5]
                hint = f" (did you mean {', '.join(near)}?)" if near else ""
                raise BpfvmError(f"--metrics {m}: not a numeric column of the results{hint}")
        return list(asked)
    present = [m for m in DEFAULT_METRICS if m in numeric and df[m].notna().any()]
    varying = [m for m in present if df[m].nunique(dropna=True) > 1]
    return varying or present[:4]


def plot_sweep(df: pd.DataFrame, sweep: Sweep, out: str | Path, axis: str | None = None,
               metrics: Sequence[str] = ()) -> list[str]:
    """Draw the sweep's results to ``out``; returns the metrics drawn."""
    plt = pyplot()
    ok = df[df["status"] == "ok"]
    if ok.empty:
        raise BpfvmError(f"--plot {out}: no run succeeded; nothing to draw")
    chosen = pick_metrics(ok, metrics)
    if not chosen:
        raise BpfvmError(f"--plot {out}: no numeric metric to draw")
    xa = x_axis(sweep, axis)
    others = [a.path for a in sweep.axes if a.path != xa]
    ncols = min(3, len(chosen))
    nrows = math.ceil(len(chosen) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.8 * nrows), squeeze=False)
    if xa is None:
        xs_all: list[Any] = list(sweep.variants)
    else:
        axis_rec = next(a for a in sweep.axes if a.path == xa)
        xs_all = [axis_rec.label(v) for v in axis_rec.values]
    numeric_x = all(isinstance(v, int | float) and not isinstance(v, bool) for v in xs_all)
    pos = {str(v): (v if numeric_x else i) for i, v in enumerate(xs_all)}
    group_cols = ["variant", *others] if xa is not None else others
    groups = ok.groupby(group_cols, sort=False, dropna=False) if group_cols else [((), ok)]
    for ax, metric in zip(axes.flat, chosen, strict=False):
        for name, g in groups:
            name = name if isinstance(name, tuple) else (name,)
            label = ", ".join(f"{c}={v}" if c != "variant" else str(v)
                              for c, v in zip(group_cols, name, strict=True)) or metric
            xcol = g[xa] if xa is not None else g["variant"]
            pts = []
            for xv in xs_all:
                vals = [float(v) for v in g[xcol.astype(str) == str(xv)][metric].dropna()]
                if vals:
                    m, h = mean_ci(vals)
                    pts.append((pos[str(xv)], m, h))
            if not pts:
                continue
            xs, ms, hs = zip(*pts, strict=True)
            line = ax.plot(xs, ms, marker="o", label=label)[0]
            ax.fill_between(xs, [m - h for m, h in zip(ms, hs, strict=True)],
                            [m + h for m, h in zip(ms, hs, strict=True)],
                            color=line.get_color(), alpha=0.2)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(xa or "variant")
        if not numeric_x:
            ax.set_xticks(range(len(xs_all)), [str(v) for v in xs_all])
        if ax.lines:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(chosen):]:
        ax.set_visible(False)
    seeds = len(sweep.seeds)
    fig.suptitle(f"{Path(sweep.file).name}: mean and 95% CI over {seeds} seed"
                 f"{'s' if seeds != 1 else ''}")
    fig.tight_layout()
    path = Path(out)
    try:
        fig.savefig(path)
    except (OSError, ValueError) as exc:
        raise BpfvmError(f"{path}: cannot write the plot: {exc}") from None
    finally:
        plt.close(fig)
    return chosen
