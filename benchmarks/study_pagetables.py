"""The page-table study, timed: every page table of programs/pt_study.toml
(radix, the naive hashed and learned tables, ecpt, ecpt_unclustered, lvm) on
its layouts.  Run by hand:

    PYTHONPATH=. python benchmarks/study_pagetables.py [--engine jit] [--layouts dense,sparse]

Prints every row of the study and, per table kind, the median over layouts
of the build time (mapping and touching every page through the page-table
programs) and of the references per walk.
"""

from __future__ import annotations

import argparse
import statistics
import time

from mmcore.studies.pagetables import DEFAULT_CONFIG, load_config, run_study


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=("interp", "jit"), default="interp")
    ap.add_argument("--layouts", default="")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG))
    args = ap.parse_args()
    cfg = load_config(args.config)
    t0 = time.perf_counter()
    rows = run_study(cfg, args.engine, tuple(n for n in args.layouts.split(",") if n))
    total = time.perf_counter() - t0
    print(f"{'layout':12} {'table':16} {'pages':>7} {'refs PWC':>9} {'refs none':>9} "
          f"{'PT MiB/GiB':>10} {'region KiB':>10} {'build s':>8}")
    for r in rows:
        print(f"{r.layout:12} {r.table:16} {r.mapped_pages:7} {r.refs_pwc:9.3f} "
              f"{r.refs_nopwc:9.3f} {r.pt_mib_per_gib:10.2f} {r.region_kib:10} "
              f"{r.build_s:8.2f}")
    for table in cfg.tables:
        mine = [r for r in rows if r.table == table]
        if mine:
            print(f"median over layouts, {table:16}: build "
                  f"{statistics.median(r.build_s for r in mine):.2f} s, refs/walk "
                  f"{statistics.median(r.refs_pwc for r in mine):.3f} with PWC, "
                  f"{statistics.median(r.refs_nopwc for r in mine):.3f} without")
    print(f"engine {args.engine}, whole study {total:.1f} s")


if __name__ == "__main__":
    main()
