"""``bpfvm mm snapshot`` and ``bpfvm mm analyze``: real machines as input.

``bpfvm mm snapshot [-o FILE]`` records this Linux machine's page flags and
memory files (:mod:`mmcore.phys.snapshot`; needs root) into a compressed
``.npz`` (default ``snapshot.npz``).  ``bpfvm mm analyze FILE [--json OUT]
[--plot MAP.png]`` prints what the snapshot says about huge pages
(:mod:`mmcore.studies.analyze`) and can draw its pageblock map: one pixel
per 2 MiB pageblock, one row per 1 GiB.  This module parses and prints only.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from bpfvm.cli.common import check_output, console, write_output
from bpfvm.errors import BpfvmError


def register(mm_subparsers: argparse._SubParsersAction) -> None:
    s = mm_subparsers.add_parser(
        "snapshot", help="record this Linux machine's physical memory (needs root)")
    s.add_argument("-o", "--output", default="snapshot.npz", metavar="FILE",
                   help="where to write the snapshot (default: snapshot.npz)")
    s.set_defaults(func=snapshot)

    a = mm_subparsers.add_parser(
        "analyze", help="tainted pageblocks and obtainable huge pages of a snapshot")
    a.add_argument("snapshot", help="snapshot file (.npz from bpfvm mm snapshot)")
    a.add_argument("--json", metavar="OUT", help="write the counts as JSON to OUT ('-': stdout)")
    a.add_argument("--plot", metavar="MAP.png", help="draw the pageblock map (matplotlib)")
    a.set_defaults(func=analyze)


def snapshot(args: argparse.Namespace) -> int:
    from mmcore.phys.snapshot import record, to_bytes

    check_output(args.output, "-o")
    snap = record()
    write_output(args.output, to_bytes(snap), "-o")
    out = console(args, stderr=args.output == "-")
    ram = snap.ram_mask()
    note = "" if ram is not None else " (iomem unreadable: holes from KPF_NOPAGE only)"
    out.print(f"{args.output}: {snap.frames} frames ({snap.frames * 4096 / 2**30:.1f} GiB of "
              f"pfns), kernel {snap.kernel}{note}")
    return 0


def analyze(args: argparse.Namespace) -> int:
    from mmcore.phys.snapshot import load
    from mmcore.studies.analyze import analyze as analyze_snapshot
    from mmcore.studies.analyze import analyze_classes

    inputs = [args.snapshot]
    if args.json:
        check_output(args.json, "--json", inputs)
    if args.plot:
        from bpfvm.cli.plot import plot_format

        check_output(args.plot, "--plot", inputs)
        plot_format(args.plot)
    _regular_file(args.snapshot)
    snap = load(args.snapshot)
    result = analyze_snapshot(snap)
    if args.plot:
        _, kinds = analyze_classes(snap.classes(), snap.pfn0)
        plot_map(kinds, snap.pfn0, args.plot, f"{args.snapshot} ({snap.origin})")
    if args.json:
        write_output(args.json, json.dumps(result, indent=2) + "\n", "--json", inputs)
        if args.json == "-":
            return 0
    print_analysis(result, console(args))
    return 0


def _regular_file(path: str) -> None:
    """A snapshot is a file: a device or a pipe (/dev/zero) is refused before
    the archive reader seeks in it forever."""
    p = Path(path)
    if p.exists() and not p.is_dir() and not p.is_file():
        raise BpfvmError(f"{path}: not a snapshot (not a regular file; a snapshot is a "
                         ".npz file from bpfvm mm snapshot)")


def print_analysis(r: dict[str, Any], out: Any) -> None:
    from rich.table import Table

    gib = r["frames"] * 4096 / 2**30
    out.print(f"{r['source']}: {r['origin']} snapshot, kernel {r['kernel'] or '?'}, "
              f"{r['frames']} frames ({gib:.1f} GiB of pfns from pfn {r['pfn0']})")
    t = Table(title=f"{r['pageblocks']} pageblocks of 2 MiB ({r['blocks_with_hole']} with a "
                    f"hole)")
    t.add_column("class")
    t.add_column("pages", justify="right")
    t.add_column("blocks holding one", justify="right")
    t.add_column("share", justify="right")
    for name, pages in r["pages"].items():
        blocks = r["blocks_with_class"].get(name)
        share = f"{blocks / r['pageblocks']:.1%}" if blocks is not None and r["pageblocks"] \
            else ""
        t.add_row(name, str(pages), "" if blocks is None else str(blocks), share)
    any_u = r["tainted"]["any_unmovable"]
    t.add_section()
    t.add_row("any unmovable", "", str(any_u),
              f"{any_u / r['pageblocks']:.1%}" if r["pageblocks"] else "")
    out.print(t)
    fl = r.get("flagless")
    if fl and fl["pages"]:
        out.print(f"kernel_other includes {fl['pages']} flagless pages (kernel allocations, or "
                  f"free pages on the per-cpu lists: /proc cannot tell); "
                  f"{fl['blocks_only_flagless']} blocks are unmovable only through them")
    ob, once, now = r["obtainable"], r["obtainable_at_once"], r["free_now"]
    out.print(f"2 MiB blocks: {now['2m']} free now; {ob['2m']} obtainable by ideal compaction "
              f"(no unmovable page, no hole), {once['2m']} of them at once with the free "
              f"memory")
    out.print(f"1 GiB blocks: {now['1g']} free now; {ob['1g']} obtainable of "
              f"{r['gigablocks']}, {once['1g']} at once")
    out.print("free blocks by order (0..10), runs of free pages: "
              + " ".join(str(n) for n in r["free_runs"]))
    for zone, counts in r["buddyinfo"].items():
        out.print(f"  /proc/buddyinfo {zone}: " + " ".join(str(n) for n in counts))
    kc = r["kernel_counters"]
    if kc:
        out.print("kernel counters: " + ", ".join(f"{k} {v}" for k, v in kc.items()))


def plot_map(kinds: Any, pfn0: int, dest: str, title: str) -> None:
    """The pageblock map: a cell per 2 MiB block, a row per 1 GiB."""
    import numpy as np

    from bpfvm.cli.plot import plot_format, pyplot
    from mmcore.studies.analyze import BlockKind

    plt = pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colors = ("#000000", "#d62728", "#ff7f0e", "#9467bd", "#ffffff", "#2ca02c", "#1f77b4",
              "#aec7e8", "#98df8a")
    front = (pfn0 // 512) % 512
    cells = np.concatenate([np.full(front, BlockKind.HOLE, np.uint8), kinds])
    cells = np.concatenate([cells, np.full((-cells.size) % 512, BlockKind.HOLE, np.uint8)])
    grid = cells.reshape(-1, 512)
    rows = grid.shape[0]
    fig, ax = plt.subplots(figsize=(14, max(2.5, 0.25 * rows + 1.5)))
    ax.imshow(grid, cmap=ListedColormap(colors), vmin=0, vmax=len(colors) - 1,
              aspect="auto", interpolation="nearest")
    first_gib = pfn0 // (512 * 512)
    ax.set_ylabel("GiB")
    step = max(1, rows // 12)
    ax.set_yticks(range(0, rows, step), [str(first_gib + i) for i in range(0, rows, step)])
    ax.set_xlabel("2 MiB pageblock within the GiB")
    ax.legend(handles=[Patch(facecolor=c, edgecolor="grey", label=n)
                       for c, n in zip(colors, BlockKind.NAMES, strict=True)],
              loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=5, fontsize=8)
    ax.set_title(f"{title}: pageblocks by the first unmovable class they hold")
    fig.tight_layout()
    image = io.BytesIO()
    try:
        fig.savefig(image, format=plot_format(dest))
    finally:
        plt.close(fig)
    write_output(dest, image.getvalue(), "--plot")
