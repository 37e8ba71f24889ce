"""Load time of clang-built BPF objects: ELF parsing (pyelftools), BTF and
BTF.ext, maps, relocations and linking into Programs.  Run by hand:

    PYTHONPATH=. python benchmarks/bench_elf.py [-n 51]

Compiles programs/*.c (and the loader test's features.c) once with
``bpfvm cc``'s toolchain, then loads each object N times from its bytes and
prints the median and the best time per object, with its size, sections and
instructions.  Compilation is not timed; verification is not included (see
bench_verifier.py).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bpfvm.asm.elf import load_object
from bpfvm.cli.common import header_text
from bpfvm.toolchain import compile_c

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "programs").glob("*.c")) + [ROOT / "tests" / "data" / "c" / "features.c"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=51, help="loads per object (default 51)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-elf-") as tmp:
        print(f"{'object':<24} {'bytes':>7} {'progs':>5} {'insns':>6} {'median ms':>10} "
              f"{'best ms':>8}")
        header = header_text()
        for src in SOURCES:
            obj = compile_c(src, Path(tmp) / f"{src.stem}.o", header=header)
            data = obj.read_bytes()
            times = []
            for _ in range(args.n):
                t = time.perf_counter()
                progs = load_object(data, obj.name)
                times.append(time.perf_counter() - t)
            insns = sum(len(p.insns) for p in progs)
            print(f"{obj.name:<24} {len(data):>7} {len(progs):>5} {insns:>6} "
                  f"{statistics.median(times) * 1e3:>10.2f} {min(times) * 1e3:>8.2f}")


if __name__ == "__main__":
    main()
