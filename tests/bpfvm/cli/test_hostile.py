"""Hostile input through the front door: every command, every input ends in
exit 0, 1 (the program's failure) or 2 (bad usage or input) with a message
naming the place; never a traceback, a hang, a crash or unbounded memory.

Every case runs the real command line in a child process limited in address
space (:data:`MEMORY_LIMIT`) and CPU time, under a wall-clock timeout.  To
keep start-up costs down, the cases that can neither hang nor crash the
process are run many to a child (:data:`DRIVER` calls ``bpfvm.cli.main``
once per case, reporting one JSON line each; a child that dies is restarted
after the case that killed it, which then fails).  Cases that run native
code, wait on a signal or need their own standard output get a child each.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PROGRAMS, ROOT

MEMORY_LIMIT = 2 << 30  # address space of each child
CPU_SECONDS = 120  # CPU time of each child (a batch runs many cases)
CASE_SECONDS = 30.0  # wall clock per case
BIG = "9" * 5000  # past Python's int-digit limit (4300)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    # a suite started in the background of a shell ignores SIGINT, and so
    # would every child (ignored signals survive exec): Ctrl-C as a terminal
    # sends it needs the default disposition
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    env.pop("PYTHONWARNINGS", None)
    return env


@dataclass
class Case:
    """One command line, what it must end in, and what stderr (or stdout) says."""

    id: str
    argv: list[str]
    code: int
    says: tuple[str, ...] = ()  # substrings of stderr (of stdout when ``stdout`` is set)
    alone: bool = False  # needs a child of its own (native code, signals, stdout)
    stdout: bool = False
    seconds: float = CASE_SECONDS
    extra: dict = field(default_factory=dict)


@dataclass
class Outcome:
    code: int | None
    out: str
    err: str
    seconds: float


# ---- inputs ---------------------------------------------------------------------------
OBJ = {"format": "bpfvm-object/1", "name": "x", "hook": None, "maps": [],
       "bytecode": "b700000001000000" + "9500000000000000", "source": []}

OBJECTS = {  # file -> (changes to a good object, key the message names)
    "o_source.json": ({"source": "oops"}, "source: expected a list"),
    "o_bcint.json": ({"bytecode": 123}, "bytecode: expected a string"),
    "o_odd.json": ({"bytecode": "abc"}, "bytecode: 3 hex digits"),
    "o_nonhex.json": ({"bytecode": "zz" * 8}, "bytecode: not hex"),
    "o_empty.json": ({"bytecode": ""}, "bytecode: empty"),
    "o_mapsdict.json": ({"maps": {"a": 1}}, "maps: expected a list"),
    "o_mapshort.json": ({"maps": [["m", "array", 4]]}, "maps[0]: expected [name, kind"),
    "o_mapstr.json": ({"maps": [["m", "array", "4", "8", "1"]]},
                      "maps[0][2]: expected an integer"),
    "o_mapkind.json": ({"maps": [["m", "queue", 4, 8, 1]]},
                      "maps[0]: map m: unknown map type 'queue'"),
    "o_mapbig.json": ({"maps": [["m", "array", 4, 1 << 24, 1 << 24]]},
                      "maps[0]: map m: needs"),
    "o_hookint.json": ({"hook": 7}, "hook: expected a string"),
    "o_hookunk.json": ({"hook": "nosuch"}, "hook: unknown hook 'nosuch'"),
    "o_extra.json": ({"extra": 1}, "extra: unknown key"),
    "o_shortsrc.json": ({"source": [["f", 1]]}, "source: 1 entries for 2"),
    "o_badsrc.json": ({"source": [["f", "x"], None]}, "source[0][1]: expected an integer"),
    "o_format.json": ({"format": "elf"}, "format: expected 'bpfvm-object/1'"),
    "o_nobc.json": ({"bytecode": None}, "bytecode: expected a string"),
    "o_objlist.json": ({"objects": [1]}, "objects: expected an object of NAME: BYTES"),
    "o_objstr.json": ({"objects": {"region": "64KiB"}}, "objects.region: expected an integer"),
    "o_objzero.json": ({"objects": {"region": 0}}, "objects.region: must be between 1"),
    "o_objbig.json": ({"objects": {"region": 1 << 40}}, "objects.region: must be between 1"),
}

MACHINE = 'duration = 3\n[machine]\nnodes = [{ memory = "%s" }]\n'
SCENARIOS = {  # file -> (text, what the message says)
    "s_nan.toml": (MACHINE % "64MiB" + "[[phases]]\n[phases.processes]\narrival_rate = nan\n",
                   "phases[0].processes.arrival_rate: expected a finite number"),
    "s_inf.toml": (MACHINE % "64MiB" + "[[phases]]\n[phases.kernel]\nslab_rate = inf\n",
                   "phases[0].kernel.slab_rate: expected a finite number"),
    "s_rate.toml": (MACHINE % "64MiB" + "[[phases]]\n[phases.kernel]\nslab_rate = 1e15\n",
                    "phases[0].kernel.slab_rate: must be in"),
    "s_pib.toml": (MACHINE % "1PiB", "machine.nodes[0].memory: 1PiB is more than the limit"),
    "s_2e50.toml": (f"duration = 3\n[machine]\nnodes = [{{ memory = {1 << 50} }}]\n",
                    "machine.nodes[0].memory: 1PiB is more than the limit"),
    "s_tib.toml": (MACHINE % "1TiB", "machine.nodes[0].memory: 1TiB is more than the limit"),
    "s_sum.toml": ('duration = 3\n[machine]\nnodes = [' + ", ".join(
        ['{ memory = "100GiB" }'] * 2) + "]\n", "machine.nodes[1].memory: the machine's memory"),
    "s_bigint.toml": ("duration = " + BIG + "\n", "(toml): a number has too many digits"),
    "s_bigsize.toml": (MACHINE % (BIG[:30] + "GiB"), "machine.nodes[0].memory: expected a size"),
    "s_files.toml": (MACHINE % "64MiB" + '[[phases]]\n[phases.file]\nfiles = 1024\n'
                     'file_size = "1TiB"\n', "phases[0].file.file_size"),
    "s_attach2.toml": (MACHINE % "64MiB" + '[[attach]]\nhook = "reclaim"\nprogram = '
                       '"reclaim_policy.s"\n[[attach]]\nhook = "mm_reclaim"\nprogram = '
                       '"reclaim_policy.s"\n', "attach[1].hook: a second program for hook"),
}

VECTOR_OK = "-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n"


def _write_inputs(d: Path) -> None:
    files = {
        "ok.s": "r0 = 1\nexit\n",
        "bigimm.s": f"r0 = {BIG}\nexit\n",
        "bigoff.s": f"r0 = *(u32 *)(r1 + {BIG})\nexit\n",
        "bigjmp.s": f"goto +{BIG}\nexit\n",
        "bigcall.s": f"call {BIG}\nexit\n",
        "bigpc.s": f"call pc+{BIG}\nexit\n",
        "bigraw.s": f".raw {BIG}\nexit\n",
        "bigmapsz.s": f".map m array key=4 value={BIG} entries=1\nr0 = 0\nexit\n",
        "bigconf.s": f"mov %r0, {BIG}\nexit\n",
        "bighex.s": f"r0 = 0x{'f' * 5000} ll\nexit\n",
        "bigmap.s": ".map m array key=4 value=16777216 entries=16777216\nr0 = 0\nexit\n",
        "loop.s": "l: goto l\nexit\n",
        "wild.s": "r1 = 0x1000000 ll\n*(u64 *)(r1 + 0) = r1\nr0 = 0\nexit\n",
        "null.s": "r1 = 0\nr0 = *(u64 *)(r1 + 0)\nexit\n",
        "nested.json": "[" * 100_000 + "]" * 100_000,
        "bignum.json": '{"format": "bpfvm-object/1", "bytecode": "", "x": ' + BIG + "}",
        "v_loop.data": "-- asm\nja -1\nexit\n-- result\n0x0\n",
        "v_bad.data": "# a comment\n\n-- asm\nmov %r0, 1\nfoo %r0\nexit\n-- result\n0x1\n",
        "v_bigres.data": f"-- asm\nmov %r0, 1\nexit\n-- result\n{BIG}\n",
        "v_bigasm.data": f"-- asm\nmov %r0, {BIG}\nexit\n-- result\n0x1\n",
        "v_bigraw.data": f"-- raw\n{BIG}\n-- result\n0x1\n",
        "afile": "not a directory\n",
        "obj_dup.s": ".hook pt_lookup\n.object region 4KiB\n.object region 8KiB\nr0 = 0\nexit\n",
        "obj_unit.s": ".hook pt_lookup\n.object region 4 parsecs\nr0 = 0\nexit\n",
        "obj_big.s": f".hook pt_lookup\n.object region {BIG}\nr0 = 0\nexit\n",
        "obj_huge.s": ".hook pt_lookup\n.object region 2GiB\nr0 = 0\nexit\n",
        "obj_zero.s": ".hook pt_lookup\n.object region 0\nr0 = 0\nexit\n",
        "obj_noname.s": ".hook pt_lookup\n.object\nr0 = 0\nexit\n",
        "obj_nosize.s": ".hook pt_lookup\n.object region\nr0 = 0\nexit\n",
        "obj_nohook.s": ".object region 4KiB\nr0 = 0\nexit\n",
        "obj_unknown.s": ".hook pt_lookup\n.object nosuch 64\nr0 = 0\nexit\n",
        "obj_none.s": ".hook reclaim\n.object region 64\nr0 = 0\nexit\n",
    }
    for name, text in files.items():
        (d / name).write_text(text)
    for name, (change, _) in OBJECTS.items():
        (d / name).write_text(json.dumps({**OBJ, **change}))
    for name, (text, _) in SCENARIOS.items():
        (d / name).write_text(text)
    (d / "s_utf8.toml").write_bytes(b'name = "\xff\xfe"\nduration = 1\n')
    (d / "odd.bin").write_bytes(b"\x95" + bytes(12))
    (d / "emptydir").mkdir()
    (d / "outdir").mkdir()
    (d / "junk").mkdir()
    (d / "junk" / "a.s").write_text("garbage here\n")
    (d / "junk" / "b.data").write_text("zzz\n")
    (d / "vectors").mkdir()
    (d / "vectors" / "one.data").write_text(VECTOR_OK)
    reclaim = (PROGRAMS / "reclaim_policy.s").read_text()
    (d / "reclaim_policy.s").write_text(reclaim)
    # a scenario whose program is raw bytecode, assembled here
    from bpfvm.load import read_program
    from mmcore.hooks.helpers import policy_helpers

    prog = read_program(PROGRAMS / "reclaim_policy.s", policy_helpers())
    (d / "reclaim.bin").write_bytes(prog.bytecode())
    (d / "s_bin.toml").write_text(MACHINE % "64MiB" + '[[attach]]\nhook = "reclaim"\n'
                                  'program = "reclaim.bin"\n')
    _write_more_inputs(d)


SWEEP = 'scenario = "s_ok.toml"\nvariants = ["builtin"]\n'
MORE_FILES = {  # inputs of the commands beyond asm/verify/run/conformance/mm run
    "s_ok.toml": MACHINE % "64MiB",
    "junk.toml": "not toml [[[\n",
    "junk.maps": "zzz\n",
    "half.maps": "7f00-7fff r-xp 0 0 0 /x\n",
    "pt_unknown.toml": "[study]\nx = 1\n",
    "sw_zero.toml": 'scenario = "/dev/zero"\n',
    "sw_missing.toml": 'scenario = "nosuch.toml"\n',
    "sw_noscen.toml": "seeds = [1]\n",
    "sw_seeds.toml": SWEEP + "seeds = []\n",
    "sw_bigseed.toml": SWEEP + f"seeds = [{BIG}]\n",
    "sw_grid.toml": SWEEP + '[grid]\n"duration" = "x"\n',
    "sw_key.toml": SWEEP + "bogus = 1\n",
    "sw_ok.toml": SWEEP,
    "bad.c": "int main( {\n",
    "zero_obj.c": '#include "bpfvm.h"\nBPFVM_OBJECT(region, 0);\n'
                  'SEC("pt_map") __u64 f(struct pt_map_ctx *c) { return 0; }\n',
    "ok.c": '#include "bpfvm.h"\nSEC("reclaim") int f(void *c) { return 0; }\n',
}


def _write_more_inputs(d: Path) -> None:
    for name, text in MORE_FILES.items():
        (d / name).write_text(text)
    (d / "sw_utf8.toml").write_bytes(b"scenario = \"\xff\xfe\"\n")
    (d / "junk.npz").write_bytes(b"garbage\x00\xff" * 10)
    (d / "rnd.o").write_bytes(bytes(range(256)) * 4)
    (d / "tiny.o").write_bytes(b"\x7fELF")


# ---- the cases ------------------------------------------------------------------------
def _cases() -> list[Case]:
    c: list[Case] = []
    lit = {"bigimm": "1:6", "bigoff": "1:20", "bigjmp": "1:7", "bigcall": "1:6",
           "bigpc": "1:9", "bigraw": "1:6", "bigmapsz": "1:26", "bigconf": "1:10",
           "bighex": "1:6"}
    for name, where in lit.items():
        c.append(Case(f"literal-{name}", ["asm", f"{name}.s", "-o", f"{name}.bin"], 2,
                      (f"{name}.s:{where}: number", "does not fit in 64 bits")))
    c.append(Case("literal-verify", ["verify", "bigimm.s"], 2, ("bigimm.s:1:6: number",)))
    c.append(Case("literal-conformance-result", ["conformance", "v_bigres.data"], 2,
                  ("v_bigres.data: -- result: not a number",)))
    c.append(Case("literal-conformance-raw", ["conformance", "v_bigraw.data"], 2,
                  ("v_bigraw.data: -- raw",)))
    c.append(Case("literal-conformance-asm", ["conformance", "v_bigasm.data"], 1,
                  ("v_bigasm.data:2:10: number",), stdout=True))
    # output paths
    c += [
        Case("out-proc", ["asm", "ok.s", "-o", "/proc/x.bin"], 2,
             ("-o /proc/x.bin: /proc: cannot write there",)),
        Case("out-dir", ["asm", "ok.s", "-o", "outdir"], 2, ("-o outdir: is a directory",)),
        Case("out-missing-dir", ["asm", "ok.s", "-o", "nodir/x.bin"], 2,
             ("-o nodir/x.bin: nodir: no such directory",)),
        Case("out-over-input", ["asm", "ok.s", "-o", "ok.s", "--format", "json"], 2,
             ("-o ok.s: is the input file",)),
        Case("out-over-input-ext", ["asm", "ok.s", "-o", "./ok.s"], 2,
             ("-o ./ok.s: is the input",)),
        Case("out-unknown-ext", ["asm", "ok.s", "-o", "x.o"], 2,
             ("-o x.o: unknown output format",)),
        Case("out-json-proc-before-the-run", ["mm", "run", "s_bin.toml", "--json",
                                              "/proc/x.json"], 2,
             ("--json /proc/x.json: /proc: cannot write there",)),
        Case("out-demo-json-proc", ["demo", "--json", "/proc/x.json"], 2,
             ("--json /proc/x.json: /proc: cannot write there",)),
        Case("out-json-to-dir", ["mm", "run", "s_bin.toml", "--json", "outdir"], 2,
             ("--json outdir: is a directory",)),
        Case("out-json-over-scenario", ["mm", "run", "s_bin.toml", "--json", "s_bin.toml"], 2,
             ("--json s_bin.toml: is the input file",)),
        Case("out-plot-ext", ["mm", "compare", "s_bin.toml", "--plot", "x.gif"], 2,
             ("--plot x.gif: name the image",)),
        Case("out-plot-missing-dir", ["mm", "compare", "s_bin.toml", "--plot", "no/x.png"], 2,
             ("--plot no/x.png: no: no such directory",)),
        Case("out-pt-json-dir", ["mm", "pagetables", "--json", "outdir"], 2,
             ("--json outdir: is a directory",)),
        Case("out-demo-json-dir", ["demo", "--json", "nodir/x.json"], 2,
             ("--json nodir/x.json: nodir: no such directory",)),
    ]
    # object files
    for name, (_, says) in OBJECTS.items():
        c.append(Case(f"object-{name[2:-5]}", ["disasm", name], 2, (f"{name}: {says}",)))
    c.append(Case("object-verify-hook", ["verify", "o_hookunk.json"], 2,
                  ("o_hookunk.json: hook: unknown hook",)))
    c.append(Case("object-nested", ["run", "nested.json"], 2,
                  ("nested.json: ", "nested too deeply")))
    c.append(Case("object-bignum", ["verify", "bignum.json"], 2,
                  ("bignum.json: ", "too many digits")))
    c.append(Case("object-bin-truncated", ["disasm", "odd.bin"], 2, ("odd.bin: pc 1: truncated",)))
    # scenarios
    for name, (_, says) in SCENARIOS.items():
        c.append(Case(f"scenario-{name[2:-5]}", ["mm", "run", name], 2, (f"{name}: {says}",)))
    c.append(Case("scenario-utf8", ["mm", "run", "s_utf8.toml"], 2,
                  ("s_utf8.toml: (file): not UTF-8 text",)))
    c.append(Case("scenario-compare-nan", ["mm", "compare", "s_nan.toml"], 2,
                  ("s_nan.toml: phases[0].processes.arrival_rate",)))
    c.append(Case("scenario-bin-program", ["mm", "run", "s_bin.toml"], 0, ()))
    # maps
    c.append(Case("map-too-big", ["verify", "bigmap.s"], 2,
                  ("bigmap.s:1:1: map 'm': needs", "limit of 256 MiB")))
    # endless inputs
    for argv, says in (
            (["run", "/dev/zero"], "/dev/zero: file larger than the limit"),
            (["verify", "/dev/zero"], "/dev/zero: file larger than the limit"),
            (["disasm", "/dev/zero"], "/dev/zero: file larger than the limit"),
            (["asm", "/dev/zero", "-o", "z.bin"], "/dev/zero: file larger than the limit"),
            (["run", "ok.s", "--mem-file", "/dev/zero"], "/dev/zero: input larger than the limit"),
            (["mm", "run", "/dev/zero"], "/dev/zero: (file): scenario larger than the limit"),
            (["mm", "pagetables", "/dev/zero"], "/dev/zero: (file): cannot read"),
            (["conformance", "/dev/zero"], "/dev/zero: vector larger than the limit")):
        c.append(Case(f"endless-{argv[0]}-{len(c)}", argv, 2, (says,)))
    # misc
    c += [
        Case("object-flag-unknown", ["verify", str(PROGRAMS / "hashed_pt.s"),
                                     "--object", "nosuch=64"], 2,
             ("--object nosuch: hook 'pt_lookup' has no object",)),
        Case("object-flag-units", ["verify", str(PROGRAMS / "hashed_pt.s"),
                                   "--object", "region=64KiB"], 0, ("accepted",), stdout=True),
        Case("object-flag-bad-size", ["verify", str(PROGRAMS / "hashed_pt.s"),
                                      "--object", "region=lots"], 2,
             ("--object region: expected a size",)),
        Case("object-directive-dup", ["verify", "obj_dup.s"], 2,
             ("obj_dup.s:3:9: second .object region (first declared on line 2)",)),
        Case("object-directive-unit", ["verify", "obj_unit.s"], 2,
             ("obj_unit.s:2:16: .object region: expected a size",)),
        Case("object-directive-big", ["asm", "obj_big.s", "-o", "obj_big.bin"], 2,
             ("obj_big.s:2:",)),
        Case("object-directive-huge", ["verify", "obj_huge.s"], 2,
             ("obj_huge.s:2:16: .object region: 2147483648 bytes is outside",)),
        Case("object-directive-zero", ["verify", "obj_zero.s"], 2,
             ("obj_zero.s:2:16: .object region: 0 bytes",)),
        Case("object-directive-noname", ["verify", "obj_noname.s"], 2,
             ("obj_noname.s:2:1: usage: .object NAME SIZE",)),
        Case("object-directive-nosize", ["verify", "obj_nosize.s"], 2,
             ("obj_nosize.s:2:1: usage: .object NAME SIZE",)),
        Case("object-directive-nohook", ["verify", "obj_nohook.s"], 2,
             ("obj_nohook.s: .object region: the program attaches to no hook",)),
        Case("object-directive-unknown", ["verify", "obj_unknown.s"], 2,
             ("obj_unknown.s: .object nosuch: hook 'pt_lookup' has no object",)),
        Case("object-directive-hook-without", ["verify", "obj_none.s"], 2,
             ("obj_none.s: .object region: hook 'reclaim' has no object of that name "
              "(it points at no object)",)),
        Case("object-directive-overridden", ["verify", "obj_huge.s", "--object",
                                             "region=4KiB"], 2, ("obj_huge.s:2:16",)),
        Case("object-flag-overrides", ["verify", str(PROGRAMS / "hashed_pt.s"), "--object",
                                       "region=32KiB", "--hook", "pt_map"], 1,
             ("rejected", "note: ", "the region-size constant is 65536 bytes"), stdout=True),
        Case("objdump-truncated", ["disasm", "odd.bin", "--objdump"], 2,
             ("odd.bin: pc 1: truncated",)),
        Case("objdump-endless", ["disasm", "/dev/zero", "--objdump"], 2,
             ("/dev/zero: file larger than the limit",)),
        Case("objdump-no-section", ["disasm", str(PROGRAMS / "hashed_pt.s"), "--objdump",
                                    "--section", "zz"], 2, ("--section zz: no program",)),
        Case("ctx-size-units", ["verify", "ok.s", "--ctx-size", "4KiB"], 0,
             ("a buffer of 4096 bytes",), stdout=True),
        Case("ctx-size-huge", ["verify", "ok.s", "--ctx-size", BIG], 2, ("--ctx-size: ",)),
        Case("section-none", ["disasm", "ok.s", "--section", "reclaim"], 2,
             ("ok.s: --section reclaim: no program for that hook",)),
        Case("section-run-bin", ["run", "odd.bin", "--section", "x"], 2, ("odd.bin: ",)),
        Case("section-unknown", ["disasm", str(PROGRAMS / "hashed_pt.s"), "--section", "zz"], 2,
             ("--section zz: no program for that hook (its sections: pt_lookup",)),
        Case("fuzz-nan", ["fuzz", "--seconds", "nan"], 2, ("--seconds: expected a finite",)),
        Case("fuzz-inf", ["fuzz", "--seconds", "inf"], 2, ("--seconds: expected a finite",)),
        Case("fuzz-out-file", ["fuzz", "--seconds", "1", "--out", "afile"], 2,
             ("--out afile: not a directory",)),
        Case("fuzz-out-proc", ["fuzz", "--seconds", "1", "--out", "/proc/nope/x"], 2,
             ("--out /proc/nope/x: cannot write there",)),
        Case("fuzz-corpus-junk", ["fuzz", "--seconds", "1", "--corpus", "junk"], 2,
             ("--corpus junk: no usable seed program",)),
        Case("conformance-empty", ["conformance", "emptydir"], 2,
             ("emptydir: no conformance vectors",)),
        Case("conformance-lines", ["conformance", "v_bad.data"], 1,
             ("v_bad.data:5:1: unknown mnemonic 'foo'",), stdout=True),
        Case("conformance-ok", ["conformance", "vectors"], 0, ("1 passed, 0 failed",),
             stdout=True),
        Case("no-attach-engine", ["mm", "run", "--no-attach", "--engine", "jit"], 2,
             ("--engine", "--no-attach")),
        Case("hook-unknown", ["verify", "ok.s", "--hook", "nosuch"], 2,
             ("--hook: unknown hook 'nosuch'",)),
    ]
    c += _more_cases()
    # each in a child of its own: native code, signals, standard output
    c += [
        Case("jit-noverify-loop", ["run", "loop.s", "--no-verify", "--engine", "jit"], 1,
             ("loop.s:1", "instruction budget"), alone=True),
        Case("jit-noverify-wild", ["run", "wild.s", "--no-verify", "--engine", "jit"], 1,
             ("wild.s:2", "invalid write of 8 bytes"), alone=True),
        Case("jit-noverify-null", ["run", "null.s", "--no-verify", "--engine", "jit"], 1,
             ("null.s:2", "invalid read of 8 bytes"), alone=True),
        Case("jit-conformance-loop", ["conformance", "v_loop.data", "--engine", "jit"], 1,
             ("v_loop.data:2", "instruction budget"), alone=True, stdout=True),
        Case("interp-conformance-loop", ["conformance", "v_loop.data"], 1,
             ("v_loop.data:2", "instruction budget"), alone=True, stdout=True),
    ]
    return c


def _more_cases() -> list[Case]:
    """The commands beyond the program tools: mm analyze/snapshot/sweep/
    pagetables/snapshot-maps, cc, header, hooks, and C or ELF input."""
    return [
        # mm analyze, mm snapshot
        Case("analyze-junk", ["mm", "analyze", "junk.npz"], 2, ("junk.npz: not a snapshot",)),
        Case("analyze-endless", ["mm", "analyze", "/dev/zero"], 2,
             ("/dev/zero: not a snapshot (not a regular file",)),
        Case("analyze-dir", ["mm", "analyze", "outdir"], 2, ("outdir: is a directory",)),
        Case("analyze-missing", ["mm", "analyze", "nosuch.npz"], 2,
             ("nosuch.npz: no such file",)),
        Case("analyze-json-dir", ["mm", "analyze", "junk.npz", "--json", "outdir"], 2,
             ("--json outdir: is a directory",)),
        Case("analyze-plot-ext", ["mm", "analyze", "junk.npz", "--plot", "x.gif"], 2,
             ("--plot x.gif: name the image",)),
        Case("snapshot-out-dir", ["mm", "snapshot", "-o", "outdir"], 2,
             ("-o outdir: is a directory",)),
        Case("snapshot-out-missing", ["mm", "snapshot", "-o", "nodir/x.npz"], 2,
             ("-o nodir/x.npz: nodir: no such directory",)),
        # mm sweep
        Case("sweep-utf8", ["mm", "sweep", "sw_utf8.toml"], 2,
             ("sw_utf8.toml: (file): not UTF-8 text",)),
        Case("sweep-endless", ["mm", "sweep", "/dev/zero"], 2,
             ("/dev/zero: (file): sweep file larger than the limit",)),
        Case("sweep-scenario-endless", ["mm", "sweep", "sw_zero.toml"], 2,
             ("sw_zero.toml: scenario: /dev/zero: scenario larger than the limit",)),
        Case("sweep-scenario-missing", ["mm", "sweep", "sw_missing.toml"], 2,
             ("sw_missing.toml: scenario: nosuch.toml: no such file",)),
        Case("sweep-junk", ["mm", "sweep", "junk.toml"], 2, ("junk.toml: (toml): ",)),
        Case("sweep-dir", ["mm", "sweep", "outdir"], 2, ("outdir: (file): is a directory",)),
        Case("sweep-no-scenario", ["mm", "sweep", "sw_noscen.toml"], 2,
             ("sw_noscen.toml: scenario: missing",)),
        Case("sweep-seeds-empty", ["mm", "sweep", "sw_seeds.toml"], 2,
             ("sw_seeds.toml: seeds: expected a non-empty array",)),
        Case("sweep-seed-digits", ["mm", "sweep", "sw_bigseed.toml"], 2,
             ("sw_bigseed.toml: (toml): a number has too many digits",)),
        Case("sweep-grid", ["mm", "sweep", "sw_grid.toml"], 2,
             ("sw_grid.toml: grid.duration: expected a non-empty array",)),
        Case("sweep-unknown-key", ["mm", "sweep", "sw_key.toml"], 2,
             ("sw_key.toml: bogus: unknown key",)),
        Case("sweep-jobs-0", ["mm", "sweep", "sw_ok.toml", "--jobs", "0"], 2,
             ("--jobs must be at least 1",)),
        Case("sweep-timeout-nan", ["mm", "sweep", "sw_ok.toml", "--timeout", "nan"], 2,
             ("--timeout: expected a finite number",)),
        Case("sweep-timeout-negative", ["mm", "sweep", "sw_ok.toml", "--timeout", "-1"], 2,
             ("--timeout: expected a finite number",)),
        Case("sweep-axis-without-plot", ["mm", "sweep", "sw_ok.toml", "--axis", "x"], 2,
             ("--axis applies to --plot only",)),
        Case("sweep-metrics-without-plot", ["mm", "sweep", "sw_ok.toml", "--metrics", "x"], 2,
             ("--metrics applies to --plot only",)),
        Case("sweep-out-ext", ["mm", "sweep", "sw_ok.toml", "--out", "r.txt"], 2,
             ("r.txt: unknown results format",)),
        Case("sweep-resume-no-out", ["mm", "sweep", "sw_ok.toml", "--resume"], 2,
             ("--resume needs --out",)),
        # mm pagetables, mm snapshot-maps
        Case("pt-maps-junk", ["mm", "pagetables", "--maps", "junk.maps"], 2,
             ("junk.maps:1: not a maps line",)),
        Case("pt-maps-range", ["mm", "pagetables", "--maps", "half.maps"], 2,
             ("half.maps:1: bad range",)),
        Case("pt-maps-dir", ["mm", "pagetables", "--maps", "outdir"], 2,
             ("outdir: is a directory",)),
        Case("pt-config-junk", ["mm", "pagetables", "junk.toml"], 2, ("junk.toml: (toml): ",)),
        Case("pt-config-key", ["mm", "pagetables", "pt_unknown.toml"], 2,
             ("pt_unknown.toml: study: unknown key",)),
        Case("pt-layouts", ["mm", "pagetables", "--layouts", "nosuch"], 2,
             ("--layouts: nosuch: no such layout",)),
        Case("pt-tables", ["mm", "pagetables", "--tables", "nosuch"], 2,
             ("--tables: no table 'nosuch'",)),
        Case("snapmaps-out-dir", ["mm", "snapshot-maps", "-o", "outdir"], 2,
             ("-o outdir: is a directory",)),
        Case("snapmaps-no-pid", ["mm", "snapshot-maps", "999999999"], 2,
             ("pid 999999999: cannot read",)),
        # cc, header, hooks
        Case("cc-dir", ["cc", "outdir"], 2, ("outdir: is a directory",)),
        Case("cc-endless", ["cc", "/dev/zero"], 2, ("/dev/zero: not a regular file",)),
        Case("cc-not-c", ["cc", "afile"], 2, ("afile: expected a C source file (.c)",)),
        Case("cc-missing", ["cc", "nosuch.c"], 2, ("nosuch.c: no such file",)),
        Case("cc-out-dir", ["cc", "ok.c", "-o", "outdir"], 2, ("-o outdir: is a directory",)),
        Case("cc-out-input", ["cc", "ok.c", "-o", "ok.c"], 2, ("-o ok.c: is the input file",)),
        Case("cc-out-missing-dir", ["cc", "ok.c", "-o", "nodir/x.o"], 2,
             ("-o nodir/x.o: nodir: no such directory",)),
        Case("header-out-dir", ["header", "-o", "outdir"], 2, ("-o outdir: is a directory",)),
        Case("header-out-missing-dir", ["header", "-o", "nodir/x.h"], 2,
             ("-o nodir/x.h: nodir: no such directory",)),
        Case("header-out-proc", ["header", "-o", "/proc/x.h"], 2,
             ("-o /proc/x.h: /proc: cannot write there",)),
        Case("hooks-long-name", ["hooks", "h" * 5000], 2, ("unknown hook 'hhhh",)),
        Case("hooks-two-formats", ["hooks", "--json", "--markdown"], 2,
             ("--json and --markdown: choose one",)),
        # ELF objects and C
        Case("elf-junk", ["verify", "rnd.o"], 2, ("rnd.o: not an ELF file",)),
        Case("elf-tiny", ["disasm", "tiny.o", "--objdump"], 2,
             ("tiny.o: truncated ELF identification",)),
        Case("c-syntax", ["verify", "bad.c"], 2, ("bpfvm: bad.c: compilation failed",),
             alone=True, seconds=120.0),
        Case("c-object-zero", ["verify", "zero_obj.c"], 2,
             ("BPFVM_OBJECT(region, ...): 0 bytes is outside 1 byte",), alone=True,
             seconds=120.0),
        Case("conformance-binary", ["conformance", "rnd.o"], 2, ("rnd.o: not UTF-8 text",)),
        Case("fuzz-corpus-missing", ["fuzz", "--seconds", "1", "--corpus", "nosuch"], 2,
             ("--corpus nosuch: no such directory",)),
    ]


CASES = _cases()
BATCHED = [c for c in CASES if not c.alone]
ALONE = [c for c in CASES if c.alone]

DRIVER = r"""
import contextlib, io, json, signal, sys, time, traceback
from bpfvm.cli import main

class Timeout(BaseException):
    pass

def alarm(signum, frame):
    raise Timeout()

signal.signal(signal.SIGALRM, alarm)
for line in sys.stdin:
    case = json.loads(line)
    out, err = io.TextIOWrapper(io.BytesIO()), io.TextIOWrapper(io.BytesIO())
    start = time.monotonic()
    signal.alarm(int(case["seconds"]))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(case["argv"])
    except Timeout:
        code = "timeout"
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:
        code = "exception"
        err.write(traceback.format_exc())
    signal.alarm(0)
    seconds = time.monotonic() - start
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8", "replace")[-20000:])
    print(json.dumps({"id": case["id"], "code": code, "out": texts[0], "err": texts[1],
                      "seconds": seconds}), flush=True)
"""


def _run_batch(cases: list[Case], cwd: Path) -> dict[str, Outcome]:
    """Run ``cases`` in as few children as possible; a child that dies fails
    the case it was running and a new one takes the rest."""
    results: dict[str, Outcome] = {}
    todo = list(cases)
    while todo:
        payload = "".join(json.dumps({"id": c.id, "argv": c.argv, "seconds": c.seconds}) + "\n"
                          for c in todo)
        budget = sum(c.seconds for c in todo) + 30
        try:
            proc = subprocess.run([sys.executable, "-c", DRIVER], input=payload, cwd=cwd,
                                  capture_output=True, text=True, timeout=budget,
                                  preexec_fn=_limits, env=_env())
            stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            stderr, rc = "batch timed out", None
        for line in stdout.splitlines():
            r = json.loads(line)
            code = r["code"] if isinstance(r["code"], int) else None
            err = r["err"] + (f"\n[{r['code']}]" if code is None else "")
            results[r["id"]] = Outcome(code, r["out"], err, r["seconds"])
        todo = [c for c in todo if c.id not in results]
        if todo:  # the child died (or hung) in the first case not reported
            dead = todo.pop(0)
            results[dead.id] = Outcome(None, "", f"child died (rc {rc}): {stderr[-3000:]}",
                                       float("inf"))
    return results


def _run_alone(case: Case, cwd: Path) -> Outcome:
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "bpfvm", *case.argv], cwd=cwd,
                              capture_output=True, text=True, timeout=case.seconds,
                              preexec_fn=_limits, env=_env())
    except subprocess.TimeoutExpired:
        return Outcome(None, "", "timed out", time.monotonic() - start)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    _write_inputs(d)
    return d


@pytest.fixture(scope="module")
def batch(workdir: Path) -> dict[str, Outcome]:
    return _run_batch(BATCHED, workdir)


def _check(case: Case, got: Outcome) -> None:
    text = got.out if case.stdout else got.err
    assert "Traceback" not in got.err and "Traceback" not in got.out, got.err
    assert got.code == case.code, f"exit {got.code}, expected {case.code}\n{got.err[-2000:]}"
    for needle in case.says:
        assert needle in text, f"{needle!r} not in:\n{text[-2000:]}"
    if case.code == 2:
        assert got.err.startswith("bpfvm: "), got.err  # one message, not a stack
    assert len(got.err) < 2000, got.err[:300]  # a hostile line is not echoed whole
    assert got.seconds < case.seconds


@pytest.mark.parametrize("case", BATCHED, ids=[c.id for c in BATCHED])
def test_hostile_input(case: Case, batch: dict[str, Outcome]) -> None:
    _check(case, batch[case.id])


@pytest.mark.parametrize("case", ALONE, ids=[c.id for c in ALONE])
def test_hostile_input_alone(case: Case, workdir: Path) -> None:
    _check(case, _run_alone(case, workdir))


def test_nothing_half_written(workdir: Path, batch: dict[str, Outcome]) -> None:
    """Refused outputs leave no file and no temporary behind; ``-`` is stdout."""
    names = {p.name for p in workdir.iterdir()}
    assert not {"x.o", "-", "z.bin", "x.gif"} & names
    assert not [n for n in names if n.endswith(".tmp")]
    assert (workdir / "ok.s").read_text() == "r0 = 1\nexit\n"
    assert not any((workdir / f"{n}.bin").exists() for n in ("bigimm", "bigoff", "bigraw"))


def test_asm_to_stdout_and_back(workdir: Path) -> None:
    """``-o -`` writes the object to stdout (JSON unless --format bin); the
    JSON object reads back with disasm."""
    as_json = _run_alone(Case("x", ["asm", "ok.s", "-o", "-"], 0), workdir)
    assert as_json.code == 0 and json.loads(as_json.out)["bytecode"].startswith("b7")
    raw = subprocess.run([sys.executable, "-m", "bpfvm", "asm", "ok.s", "-o", "-", "--format",
                          "bin"], cwd=workdir, capture_output=True, timeout=CASE_SECONDS,
                         env=_env())
    assert raw.returncode == 0 and raw.stdout == bytes.fromhex("b7000000010000009500000000000000")
    assert not (workdir / "-").exists()
    (workdir / "back.json").write_text(as_json.out)
    back = _run_alone(Case("y", ["disasm", "back.json"], 0), workdir)
    assert back.code == 0 and "r0 = 1" in back.out


@pytest.mark.parametrize("argv", [["verify", "ok.s"], ["hooks"], ["asm", "ok.s", "-o", "-"]],
                         ids=["verify", "hooks", "asm-stdout"])
def test_stdout_full(workdir: Path, argv: list[str]) -> None:
    """A standard output that cannot be written (``> /dev/full``) is exit 2
    with one message, not a traceback."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "bpfvm", *argv], cwd=workdir,
                              stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=CASE_SECONDS, preexec_fn=_limits, env=_env())
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert "cannot write to standard output: No space left on device" in proc.stderr


def test_closed_pipe_is_quiet(workdir: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bpfvm", "hooks"], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            preexec_fn=_limits)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=CASE_SECONDS) in (0, 2)
    assert "Traceback" not in err and "Exception ignored" not in err


@pytest.mark.parametrize("after", [0.4, 1.0, 3.0])
def test_interrupt_ends_cleanly(workdir: Path, after: float) -> None:
    """Ctrl-C in a long run, whether it lands while the modules load (an
    extension's import can leave CPython's interrupt mark set) or in the run:
    exit 130, one line, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "bpfvm", "mm", "run",
                             str(PROGRAMS / "contiguitas.toml")], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env(), preexec_fn=_limits)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=CASE_SECONDS)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "bpfvm: interrupted" in err


# ---- the front door for a new user (in-process: these cannot hang or crash) -------
def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from bpfvm.cli import main

    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


@pytest.mark.parametrize("ctx,hint,r0", [
    ("nr_nodes=2,free_node1=100", None, 0),  # cold, the far tier full: node 0
    ("nr_nodes=2,free_node1=100000", None, 1),  # cold, the far tier has room: node 1
    ("nr_nodes=2,free_node0=100000", "hint=900", 0),  # hot, the fast tier has room
    ("nr_nodes=2", "hint=900", 1),  # hot, the fast tier full
    ("nr_nodes=1", "hint=900", 0),  # one node: node 0
])
def test_run_builds_a_hooks_context(capsys: pytest.CaptureFixture[str], ctx: str,
                                    hint: str | None, r0: int) -> None:
    extra = ["--ctx", hint] if hint else []
    code, out, err = _main(capsys, "run", str(PROGRAMS / "tier_placement.s"), "--ctx", ctx,
                           *extra, "--json")
    report = json.loads(out)
    assert code == 0 and report["r0"] == r0 and report["contract"]["ok"], err
    assert report["ctx"]["nr_nodes"] == int(ctx.split(",")[0].split("=")[1])


@pytest.mark.parametrize("argv,says", [
    (["--ctx", "bogus=1"], "--ctx bogus: hook 'placement' has no such field (its fields: order"),
    (["--ctx", "nr_nodes=99999999999"], "--ctx nr_nodes: 99999999999 does not fit in 4 bytes"),
    (["--ctx", "nr_nodes=two"], "--ctx nr_nodes: expected an integer"),
    (["--ctx", "nr_nodes=" + BIG], "--ctx nr_nodes: expected an integer"),
    (["--mem", "00"], "tier_placement.s: written for hook 'placement': give its context"),
])
def test_run_ctx_errors(capsys: pytest.CaptureFixture[str], argv: list[str], says: str) -> None:
    code, _, err = _main(capsys, "run", str(PROGRAMS / "tier_placement.s"), *argv)
    assert code == 2 and says in err


def test_run_refuses_what_needs_the_mm_core(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    code, _, err = _main(capsys, "run", str(PROGRAMS / "hashed_pt.s"), "--section", "pt_map")
    assert code == 2 and "hook 'pt_map' points at MM memory (region)" in err
    prog = tmp_path / "asks.s"
    prog.write_text(".hook placement\nr1 = 0\ncall mm_node_free_pages\nr0 = 0\nexit\n")
    code, _, err = _main(capsys, "run", str(prog))
    assert code == 2 and "asks.s:3: calls mm_node_free_pages, an MM helper" in err
    code, _, err = _main(capsys, "run", str(PROGRAMS / "hashed_pt.s"), "--section", "pt_map",
                         "--ctx", "x=1")
    assert code == 2


def test_run_json_reports_rejections_and_faults(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    prog = tmp_path / "loop.s"
    prog.write_text("l: goto l\nexit\n")
    code, out, err = _main(capsys, "run", str(prog), "--json")
    assert code == 1 and json.loads(out)["kind"] == "rejected" and "unreachable" in err
    code, out, err = _main(capsys, "run", str(prog), "--json", "--no-verify")
    report = json.loads(out)
    assert code == 1 and report["kind"] == "fault" and "instruction budget" in report["error"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfvm import __version__
    from bpfvm.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"bpfvm {__version__}\n"


def test_tables_are_not_cut_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a terminal: table rows keep their whole text on one line."""
    code, out, _ = _main(capsys, "hooks", "placement")
    assert code == 0
    doc = "0 anon, 1 page cache, 2 reclaimable slab, 3 unmovable slab, 4 network buffer"
    assert any(doc in line for line in out.splitlines())
    assert max(len(line) for line in out.splitlines()) > 80
