"""Rich tables for MM metrics and scenario results (used by ``bpfvm mm run``).

``results_tables(results)`` gives the tables for a run: a summary of the
global counters, a per-zone table (free pages, free blocks per order,
pageblocks by migratetype, unmovable-tainted pageblocks, fragmentation
score and the extfrag/unusable indices at 2 MiB), and the hook counters.
"""

from __future__ import annotations

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
)


def _get(m: dict[str, Any], path: tuple[str, ...]) -> Any:
    for k in path:
        m = m[k]
    return m


def summary_table(metrics: dict[str, Any], title: str = "MM metrics") -> Table:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for label, path in SUMMARY_ROWS:
        v = _get(metrics, path)
        t.add_row(label, f"{v:,}" if isinstance(v, int) else str(v))
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


def results_tables(results: dict[str, Any]) -> list[Table]:
    m = results["metrics"]
    r = results
    title = f"{r['scenario']} (seed {r['seed']}, {r['duration']} ticks, {r['wall_seconds']} s)"
    return [summary_table(m, title), zone_table(m), hooks_table(m)]


def print_results(results: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for table in results_tables(results):
        console.print(table)
