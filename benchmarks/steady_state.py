"""The simulator's steady state beside a real machine, both read by ``analyze``.

Runs a scenario (default: the Linux-like side of ``programs/contiguitas.toml``)
to its end, reads the simulated frames as a snapshot would record them
(:func:`mmcore.scenario.seed.classes_of`) and prints, beside the same counts
of a snapshot (``--snapshot FILE``, e.g. one made by ``bpfvm mm snapshot``;
default: the synthetic test snapshot), the share of 2 MiB pageblocks holding
each class of unmovable page, the free and compaction-obtainable 2 MiB blocks
and the page classes.  Usage::

    python benchmarks/steady_state.py [SCENARIO.toml] [--programs] [--snapshot FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcore.phys.snapshot import load  # noqa: E402
from mmcore.scenario.runner import Runner, baseline_of  # noqa: E402
from mmcore.scenario.schema import load_scenario  # noqa: E402
from mmcore.scenario.seed import classes_of  # noqa: E402
from mmcore.studies.analyze import analyze, analyze_classes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def shares(a: dict) -> dict[str, float]:
    n = a["pageblocks"]
    out = {f"pageblocks holding {k}": v / n for k, v in a["tainted"].items()}
    out["2 MiB blocks free now"] = a["free_now"]["2m"] / n
    out["2 MiB blocks obtainable by ideal compaction"] = a["obtainable"]["2m"] / n
    frames = sum(v for k, v in a["pages"].items() if k != "hole")
    out.update({f"pages: {k}": v / frames for k, v in a["pages"].items() if k != "hole"})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", nargs="?", default=str(ROOT / "programs" / "contiguitas.toml"))
    p.add_argument("--programs", action="store_true", help="the programs side, not Linux-like")
    p.add_argument("--snapshot", default=str(ROOT / "tests" / "data" / "snapshots" /
                                             "synthetic.npz"))
    args = p.parse_args()
    sc = load_scenario(args.scenario)
    runner = Runner(sc) if args.programs else Runner(baseline_of(sc), attach=False)
    runner.run()
    sim_counts = analyze_classes(classes_of(runner.mm))[0]
    snap = load(args.snapshot)
    real_counts = analyze(snap)
    sim, real = shares(sim_counts), shares(real_counts)
    print(f"{'':48s} {'simulated':>10s} {'snapshot':>10s}")
    print(f"{'':48s} {sc.name[:10]:>10s} {Path(args.snapshot).stem[:10]:>10s}")
    for k in sim:
        print(f"{k:48s} {100 * sim[k]:9.1f}% {100 * real.get(k, 0.0):9.1f}%")
    print(f"{'pageblocks':48s} {sim_counts['pageblocks']:10,} {real_counts['pageblocks']:10,}")
    print(f"snapshot: {snap.origin}, kernel {snap.kernel or '?'}, {len(snap.flags):,} frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
