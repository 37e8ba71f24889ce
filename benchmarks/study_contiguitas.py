"""The Contiguitas study, printed as tables.

    python benchmarks/study_contiguitas.py [SCENARIO.toml] [--sweep-only] [--engine jit]

1. Runs ``programs/contiguitas.toml`` (or SCENARIO) under the Linux-like
   baseline and with the unmovable region and ``contiguitas_resize.s``;
   prints, per sample window, the share of pageblocks holding unmovable
   pages, the 2 MiB and 1 GiB allocation success rates, pages migrated by
   compaction, live unmovable kernel memory, the size of the unmovable
   region and the resizes so far; then the final totals, with a third
   column: the same region kept at its boot size (no resize program).
   The region gives back only pageblocks free of unmovable pages: those
   holding a long-lived kernel page or a running process's page tables
   keep it above its floor (moving them would take Contiguitas' hardware
   migration of unmovable pages, which the model does not have).
2. The sweep: the simulated kernel at rising activity (slab objects with
   long-tailed lifetimes, network buffers, page tables under pressure) on a
   Linux-like node kept full by page cache; the unmovable and misplaced
   fractions it leaves (measured), the pageblocks they taint against what a
   uniform scatter of the same fraction would taint, and the 2 MiB blocks a
   full compaction recovers.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bpfvm.cli.tables import COMPARE_ROWS  # noqa: E402
from mmcore.hooks.specs import canonical  # noqa: E402
from mmcore.scenario.runner import Runner, as_scenario, compare_scenario  # noqa: E402
from mmcore.studies.contiguitas import (  # noqa: E402
    SWEEP_MEMORY,
    SWEEP_TICKS,
    misplaced_sweep,
    timeline,
)

DEFAULT = Path(__file__).resolve().parents[1] / "programs" / "contiguitas.toml"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def over_time(cmp: dict) -> Table:
    t = Table(title="over time: built-in (B) vs Contiguitas (C)")
    for col in ("tick", "unmov pb B", "unmov pb C", "2M ok B", "2M ok C", "1G ok B", "1G ok C",
                "migrated B", "migrated C", "kernel MiB", "region C MiB", "resizes C"):
        t.add_column(col, justify="right")
    base, pol = timeline(cmp["baseline"]), timeline(cmp["programs"])
    for b, c, s in zip(base, pol, cmp["programs"]["series"], strict=True):
        t.add_row(str(b["tick"]), pct(b["unmovable_share"]), pct(c["unmovable_share"]),
                  pct(b["success_2m"]), pct(c["success_2m"]),
                  f"{pct(b['success_1g'])} ({b['attempts_1g']})",
                  f"{pct(c['success_1g'])} ({c['attempts_1g']})",
                  f"{b['migrated']:,}", f"{c['migrated']:,}", f"{s['kernel_pages'] >> 8:,}",
                  f"{c['normal_pages'] >> 8:,}", str(s["zone_resizes"]))
    return t


def static_region(scenario: str, engine: str | None) -> dict:
    """The programs side with the region kept at its boot size: the scenario
    without its zone_resize program."""
    sc = as_scenario(scenario)
    keep = tuple(a for a in sc.attach if canonical(a.hook) != "zone_resize")
    return Runner(replace(sc, attach=keep), engine=engine).run()


# the background reclaim and compaction behind the 2 MiB figures
BACKGROUND_ROWS = (
    ("kswapd runs (woken for order > 0)",
     lambda m: f"{m['reclaim']['kswapd_runs']:,} ({m['reclaim']['kswapd_high_order_runs']:,})",
     None, False),
    ("kcompactd wakeups / runs",
     lambda m: f"{sum(m['kcompactd']['wakeups']):,} / {sum(m['kcompactd']['runs']):,}",
     None, False),
    ("slab objects live / pages at the end",
     lambda m: f"{m['slab']['objects']:,} / {m['slab']['pages']:,}" if "slab" in m else None,
     None, False),
)


def fmt(v: object, percent: bool) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if percent:
        return f"{100 * v:.1f}%"
    return f"{v:,.3f}" if isinstance(v, float) else f"{v:,}"


def totals(cmp: dict, static: dict) -> Table:
    """Final metrics: built-in, Contiguitas, and the region without resizing."""
    t = Table(title="totals")
    for col in ("metric", "built-in", "Contiguitas", "region, no resize"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    runs = (cmp["baseline"]["metrics"], cmp["programs"]["metrics"], static["metrics"])
    for label, get, _better, percent in COMPARE_ROWS + BACKGROUND_ROWS:
        values = [get(m) for m in runs]
        if any(v is not None for v in values):
            t.add_row(label, *(fmt(v, percent) for v in values))
    return t


def sweep_table(memory: int) -> Table:
    t = Table(title=f"kernel activity vs 2 MiB blocks ({memory >> 20} MiB Linux-like node kept "
                    f"full by page cache, {SWEEP_TICKS} ticks; then 50% page cache, full "
                    "compaction)")
    for col in ("activity", "unmovable pages", "misplaced (in movable pageblocks)",
                "pageblocks tainted", "clean if scattered uniformly (1-f)^512",
                "2 MiB blocks obtained / possible", "pages migrated"):
        t.add_column(col, justify="right")
    for p in misplaced_sweep(memory=memory):
        t.add_row(f"{p.activity:g}", f"{100 * p.unmovable:.2f}%", f"{100 * p.fraction:.3f}%",
                  f"{100 * p.tainted_share:.1f}%", f"{100 * p.expected_clean_share:.1f}%",
                  f"{p.free_2m} / {p.free_2m_ideal} ({pct(p.obtained_share)})",
                  f"{p.migrated:,}")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default=str(DEFAULT))
    ap.add_argument("--sweep-only", action="store_true")
    ap.add_argument("--engine", choices=("interp", "jit"))
    ap.add_argument("--sweep-memory", type=int, default=SWEEP_MEMORY,
                    help=f"bytes (default {SWEEP_MEMORY >> 20} MiB)")
    args = ap.parse_args()
    out = Console(width=150)
    if not args.sweep_only:
        t0 = time.perf_counter()
        cmp = compare_scenario(args.scenario, engine=args.engine)
        static = static_region(args.scenario, args.engine)
        out.print(over_time(cmp))
        out.print(totals(cmp, static))
        out.print(f"scenario {args.scenario}: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    out.print(sweep_table(args.sweep_memory))
    out.print(f"sweep: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
