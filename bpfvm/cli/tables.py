"""Rich tables for MM metrics and scenario results (``bpfvm mm run/compare``).

``results_tables(results)`` gives the tables for a run: a summary of the
global counters, a per-zone table (free pages, free blocks per order,
pageblocks by migratetype, unmovable-tainted pageblocks, fragmentation
score and the extfrag/unusable indices at 2 MiB), and the hook counters.
``compare_table(sides)`` puts runs of one workload side by side with
deltas from the built-in side, coloured by whether the change is an
improvement; ``workload_lines`` says what work every side was offered and
completed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from mmcore.constants import ORDER_2M

SUMMARY_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("faults", ("faults",)),
    ("major faults (swap-in)", ("major_faults",)),
    ("OOM (fault failed)", ("oom",)),
    ("2 MiB attempts", ("huge_2m", "attempts")),
    ("2 MiB successes", ("huge_2m", "successes")),
    ("1 GiB attempts", ("huge_1g", "attempts")),
    ("1 GiB successes", ("huge_1g", "successes")),
    ("compaction runs", ("compaction", "runs")),
    ("compaction successes", ("compaction", "successes")),
    ("pages migrated", ("compaction", "pages_migrated")),
    ("reclaim scanned", ("reclaim", "scanned")),
    ("  for movable allocations", ("reclaim", "scanned_for_movable")),
    ("  for unmovable allocations", ("reclaim", "scanned_for_unmovable")),
    ("reclaimed", ("reclaim", "reclaimed")),
    ("swap out (pages)", ("reclaim", "swap_out")),
    ("file pages evicted", ("reclaim", "file_evictions")),
    ("allocation failures", ("alloc", "failed")),
    ("fallback steals", ("alloc", "fallback_steals")),
    ("TLB hits", ("tlb", "hits")),
    ("TLB misses", ("tlb", "misses")),
    ("walk memory references", ("tlb", "walk_refs")),
    ("refs per walk", ("tlb", "refs_per_walk")),
    ("page-table pages", ("page_table_pages",)),
    ("pageblocks with unmovable pages", ("pageblocks_unmovable_pages",)),
    ("pageblocks total", ("pageblocks_total",)),
    ("zone resizes / pageblocks moved", ("zone_resizes",)),
    ("1 GiB ranges free of unmovable pages", ("gib_ranges_clean", "clean")),
    ("random memory references", ("access", "references")),
    ("  local share", ("access", "local_share")),
    ("  mean node distance (10 local)", ("access", "mean_distance")),
)
_PERCENT_ROWS = {"  local share"}

# What each policy hook is for: the metrics a scenario attaching it exists to
# show (labels of COMPARE_ROWS), printed under a run's tables.
HEADLINES: dict[str, tuple[str, ...]] = {
    "placement": ("local accesses", "mean access distance"),
    "hugepage": ("2 MiB allocation success", "  2 MiB pages allocated", "1 GiB allocation success",
                 "TLB misses", "walk memory references"),
    "reclaim": ("reclaim scanned", "swap out (pages)", "major faults (swap-in)",
                "file pages evicted"),
    "zone_resize": ("pageblocks with unmovable pages", "1 GiB ranges free of unmovable pages",
                    "1 GiB allocation success", "zone resizes"),
    "lifetime": ("pageblocks with unmovable pages", "1 GiB ranges free of unmovable pages",
                 "2 MiB allocation success"),
}


def _get(m: dict[str, Any], path: tuple[str, ...]) -> Any:
    for k in path:
        m = m[k]
    return m


def summary_table(metrics: dict[str, Any], title: str = "MM metrics") -> Table:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for label, path in SUMMARY_ROWS:
        v = _get_or_none(*path)(metrics)
        if v is None and path[0] not in metrics:
            continue  # a metric this run does not have
        shown = _fmt(v, label in _PERCENT_ROWS) if v is not None else "-"
        t.add_row(label, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else shown)
    return t


def zone_table(metrics: dict[str, Any]) -> Table:
    t = Table(title="zones")
    for col in ("zone", "managed", "free", "free blocks by order (0..18)", "pb U/M/R",
                "pb w/ unmov", "frag score", "unusable@2M", "extfrag@2M"):  # fmt: skip
        t.add_column(col, justify="left" if col.startswith("free blocks") else "right")
    for name, z in metrics["zones"].items():
        by = z["pageblocks_by_mt"]
        t.add_row(
            name,
            f"{z['managed_pages']:,}",
            f"{z['free_pages']:,}",
            " ".join(str(n) for n in z["free_blocks"]),
            f"{by['unmovable']}/{by['movable']}/{by['reclaimable']}",
            str(z["pageblocks_unmovable_pages"]),
            str(z["fragmentation_score"]),
            f"{z['unusable_index'][ORDER_2M] / 1000:.3f}",
            f"{z['extfrag_index'][ORDER_2M] / 1000:.3f}",
        )
    return t


def hooks_table(metrics: dict[str, Any]) -> Table:
    t = Table(title="hooks")
    for col in ("hook", "attached", "calls", "fallbacks", "errors"):
        t.add_column(col, justify="left" if col == "hook" else "right")
    for name, h in metrics["hooks"].items():
        t.add_row(
            name,
            "yes" if h["attached"] else "-",
            f"{h['calls']:,}",
            str(h["fallbacks"]),
            str(h["errors"]),
        )
    return t


def _rate(m: dict[str, Any], key: str) -> float | None:
    h = m[key]
    return h["successes"] / h["attempts"] if h["attempts"] else None


def _share(m: dict[str, Any]) -> float:
    return m["pageblocks_unmovable_pages"] / m["pageblocks_total"]


def _get_or_none(*path: str) -> Callable[[dict[str, Any]], Any]:
    def get(m: dict[str, Any]) -> Any:
        for k in path:
            if not isinstance(m, dict) or k not in m:
                return None
            m = m[k]
        return m

    return get


# (label, value of a run's metrics, +1 if higher is better / -1 if lower / 0, percent?)
COMPARE_ROWS: tuple[tuple[str, Callable[[dict[str, Any]], Any], int, bool], ...] = (
    ("2 MiB allocation success", lambda m: _rate(m, "huge_2m"), +1, True),
    ("  2 MiB pages allocated", _get_or_none("huge_2m", "successes"), +1, False),
    ("1 GiB allocation success", lambda m: _rate(m, "huge_1g"), +1, True),
    ("  1 GiB pages allocated", _get_or_none("huge_1g", "successes"), +1, False),
    ("pageblocks with unmovable pages", _share, -1, True),
    ("1 GiB ranges free of unmovable pages", _get_or_none("gib_ranges_clean", "clean"), +1,
     False),
    ("compaction runs", _get_or_none("compaction", "runs"), -1, False),
    ("compaction successes", _get_or_none("compaction", "successes"), +1, False),
    ("pages migrated", _get_or_none("compaction", "pages_migrated"), -1, False),
    ("faults", _get_or_none("faults"), 0, False),
    ("OOM (fault failed)", _get_or_none("oom"), -1, False),
    ("reclaim scanned", _get_or_none("reclaim", "scanned"), -1, False),
    ("swap out (pages)", _get_or_none("reclaim", "swap_out"), -1, False),
    ("major faults (swap-in)", _get_or_none("major_faults"), -1, False),
    ("file pages evicted", _get_or_none("reclaim", "file_evictions"), -1, False),
    ("allocation failures", _get_or_none("alloc", "failed"), -1, False),
    ("mean access distance", _get_or_none("access", "mean_distance"), -1, False),
    ("local accesses", _get_or_none("access", "local_share"), +1, True),
    ("TLB misses", _get_or_none("tlb", "misses"), -1, False),
    ("walk memory references", _get_or_none("tlb", "walk_refs"), -1, False),
    ("zone resizes", _get_or_none("zone_resizes"), 0, False),
    ("pageblocks moved", _get_or_none("pageblocks_moved"), 0, False),
)


def _fmt(v: Any, pct: bool) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.1f}%"
    if isinstance(v, float):
        return f"{v:,.3f}"
    return f"{v:,}"


def _delta(a: Any, b: Any, pct: bool, better: int) -> str:
    if a is None or b is None:
        return ""
    d = b - a
    if not d:
        return "="
    text = f"{100 * d:+.1f} pts" if pct else (f"{d:+,.3f}" if isinstance(d, float) else f"{d:+,}")
    if not pct and a:
        text += f" ({100 * d / abs(a):+.0f}%)"
    if better:
        colour = "green" if d * better > 0 else "red"
        text = f"[{colour}]{text}[/]"
    return text


def side_label(name: str) -> str:
    """A comparison side's column heading."""
    return "all programs" if name == "programs" else name


def compare_rows(sides: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The compared metrics of every side (``built-in`` first) as plain data
    (for ``--json``)."""
    out = []
    names = list(sides)
    for label, get, better, _pct in COMPARE_ROWS:
        values = {n: get(sides[n]["metrics"]) for n in names}
        out.append({"metric": label.strip(), "built_in": values[names[0]],
                    "programs": values[names[-1]], "sides": values,
                    "higher_is_better": better > 0 if better else None})
    return out


def compare_table(sides: dict[str, dict[str, Any]], title: str = "") -> Table:
    """Runs of one workload side by side (``built-in`` first), each other
    side with its change from the first, coloured by whether the change is
    an improvement."""
    names = list(sides)
    metrics = [sides[n]["metrics"] for n in names]
    t = Table(title=title or None)
    t.add_column("metric")
    t.add_column(side_label(names[0]), justify="right")
    for n in names[1:]:
        t.add_column(side_label(n), justify="right")
        t.add_column("change" if len(names) == 2 else "vs built-in", justify="right")
    for label, get, better, pct in COMPARE_ROWS:
        values = [get(m) for m in metrics]
        if all(v is None for v in values):
            continue
        cells = [_fmt(values[0], pct)]
        for v in values[1:]:
            cells += [_fmt(v, pct), _delta(values[0], v, pct, better)]
        t.add_row(label, *cells)
    return t


def compare_header(sides: dict[str, dict[str, Any]]) -> list[str]:
    """Lines saying what each side ran."""
    lines = []
    for name, r in sides.items():
        progs = ", ".join(f"{a['hook']} <- {a['program']} ({r['engines'].get(_hook(a), '?')})"
                          for a in r["attach"])
        what = _machine_line(r) + (f"; {progs}" if progs else "")
        lines.append(f"{side_label(name)}: {what}  ({r['wall_seconds']} s)")
    return lines


_WORK = (("processes", "processes started", None), ("touched_bytes", "memory touched", "MiB"),
         ("references", "references", None), ("kernel_allocs", "kernel allocations", None),
         ("file_reads", "file reads", None), ("munmaps", "munmaps", None))


def workload_lines(cmp: dict[str, Any]) -> list[str]:
    """The work offered to every side, what each side completed where it fell
    short, and a warning for any offered count that differs between sides."""
    sides = cmp["sides"]
    first = next(iter(sides.values()))["metrics"]["workload"]["offered"]

    def show(v: int, unit: str | None) -> str:
        return f"{v / (1 << 20):,.0f} MiB" if unit else f"{v:,}"

    offered = ", ".join(f"{label} {show(first[k], unit)}" for k, label, unit in _WORK
                        if first.get(k))
    lines = []
    if cmp["workload_mismatches"]:
        lines += [f"[red]warning[/]: {m}" for m in cmp["workload_mismatches"]]
    else:
        lines.append(f"offered work, identical on every side: {offered}")
    for name, r in sides.items():
        w = r["metrics"]["workload"]
        short = [f"{label} {show(w['completed'][k], unit)} of {show(w['offered'][k], unit)}"
                 for k, label, unit in _WORK if w["completed"][k] < w["offered"][k]]
        if short:
            lines.append(f"{side_label(name)} completed: " + ", ".join(short))
    return lines


def _hook(a: dict[str, Any]) -> str:
    h = a["hook"]
    return h[3:] if h.startswith("mm_") else h


def _machine_line(r: dict[str, Any]) -> str:
    nodes = r["machine"]["nodes"]
    parts = []
    for n in nodes:
        mov = n["movable_pages"] * 100 // n["pages"]
        size = f"{n['pages'] >> 18} GiB" if n["pages"] >= 1 << 18 else f"{n['pages'] >> 8} MiB"
        parts.append(f"{size} {n['tier']} ({mov}% movable zone)")
    return ", ".join(parts)


def hook_problems(results: dict[str, Any]) -> list[str]:
    """One line per attached hook whose program faulted or was overruled."""
    out = []
    for name, h in results["metrics"]["hooks"].items():
        if h["attached"] and (h["fallbacks"] or h["errors"]):
            line = f"{name}: {h['fallbacks']} of {h['calls']:,} decisions fell back"
            if h["errors"]:
                line += f", {h['errors']} faults (last: {h.get('last_error', '')})"
            out.append(line)
    return out


def results_tables(results: dict[str, Any]) -> list[Table]:
    m = results["metrics"]
    r = results
    title = f"{r['scenario']} (seed {r['seed']}, {r['duration']} ticks, {r['wall_seconds']} s)"
    return [summary_table(m, title), zone_table(m), hooks_table(m)]


def headline(results: dict[str, Any]) -> list[str]:
    """The metrics the run's attached hooks exist to change, one line per
    hook (``placement: local accesses 93.1%, mean access distance 11.2``);
    the headline of the demo scenario (zone_resize) when nothing is attached."""
    m = results["metrics"]
    hooks = [h for h, v in m.get("hooks", {}).items() if v.get("attached")]
    rows = {label: (get, pct) for label, get, _, pct in COMPARE_ROWS}
    out = []
    for hook in hooks:
        parts = []
        for label in HEADLINES.get(hook, ()):
            get, pct = rows[label]
            value = get(m)
            if value is not None:
                parts.append(f"{label.strip()} {_fmt(value, pct)}")
        if parts:
            out.append(f"{hook}: " + ", ".join(parts))
    return out


def print_results(results: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for table in results_tables(results):
        console.print(table)
    for line in headline(results):
        console.print(line, markup=False, highlight=False)
