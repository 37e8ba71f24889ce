"""Differential tests against LLVM: ``llvm-mc -triple bpf`` must assemble the
kernel-syntax corpus (tests/data/asm/kernel) to the same bytes as ours, and
our disassembly of those bytes must read like ``llvm-objdump -d``'s.
Skipped where the LLVM tools are not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bpfvm.asm.assembler import assemble_file
from bpfvm.asm.disasm import format_insn
from bpfvm.isa import TABLE, Kind
from bpfvm.isa.insn import Insn, decode
from tests.conftest import DATA

CORPUS = sorted((DATA / "asm" / "kernel").glob("*.s"))
TOOLS = ("llvm-mc", "llvm-objcopy", "llvm-objdump")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="llvm-mc, llvm-objcopy or llvm-objdump not installed")
_LINE = re.compile(r"^\s*(\d+):\t([0-9a-f ]+)\t(.*)$")


def _llvm_object(source: Path, tmp_path: Path) -> Path:
    obj = tmp_path / (source.stem + ".o")
    subprocess.run(["llvm-mc", "-triple", "bpf", "-mattr=+alu32", "-filetype=obj",
                    str(source), "-o", str(obj)], check=True, capture_output=True, text=True)
    return obj


def _text_section(obj: Path, tmp_path: Path) -> bytes:
    out = tmp_path / (obj.stem + ".text.bin")
    subprocess.run(["llvm-objcopy", "-O", "binary", "--only-section=.text", str(obj),
                    str(out)], check=True, capture_output=True)
    return out.read_bytes()


def _objdump(obj: Path, *flags: str) -> dict[int, str]:
    """pc -> instruction text printed by llvm-objdump (label annotations removed)."""
    out = subprocess.run(["llvm-objdump", "-d", *flags, str(obj)], check=True,
                         capture_output=True, text=True).stdout
    lines = {}
    for line in out.splitlines():
        m = _LINE.match(line)
        if m:
            lines[int(m.group(1))] = _normalise(re.sub(r"\s+<[\w.$+]+>$", "", m.group(3)))
    return lines


def _normalise(text: str) -> str:
    return " ".join(text.split())


def test_corpus_covers_the_llvm14_opcodes() -> None:
    """Every v1-v3 operation LLVM 14 can assemble appears in the corpus."""
    seen = set()
    for path in CORPUS:
        seen |= {i.spec.key for i in assemble_file(path).insns if i.spec is not None}
    # LLVM 14 lacks: mod, jset, st (store immediate), fetch atomics in its asm
    # parser, and all of v4 (sdiv, smod, movsx, ldsx, bswap, gotol, callx).
    missing_in_llvm14 = re.compile(r"^(mod|jset|st[bhwd]|smod|sdiv|movsx|ldxs|bswap|gotol|"
                                   r"callx|call_local|ldabsdw|ldinddw|lddw_map)|fetch|xchg")
    wanted = {s.key for s in TABLE if s.version <= 3 and not missing_in_llvm14.search(s.key)}
    assert wanted - seen == set()


@pytest.mark.parametrize("source", CORPUS, ids=lambda p: p.stem)
def test_same_bytes_as_llvm_mc(source: Path, tmp_path: Path) -> None:
    ours = assemble_file(source).bytecode()
    theirs = _text_section(_llvm_object(source, tmp_path), tmp_path)
    assert len(ours) == len(theirs)
    for pc in range(len(ours) // 8):
        assert ours[pc * 8:pc * 8 + 8] == theirs[pc * 8:pc * 8 + 8], f"slot {pc}"


@pytest.mark.parametrize("source", CORPUS, ids=lambda p: p.stem)
def test_disassembly_reads_like_llvm_objdump(source: Path, tmp_path: Path) -> None:
    obj = _llvm_object(source, tmp_path)
    insns = decode(_text_section(obj, tmp_path))
    plain = _objdump(obj)  # r registers for loads and stores, as we print them
    alu32 = _objdump(obj, "--mattr=+alu32")  # how LLVM prints 32-bit atomics (w registers)
    compared = 0
    for pc, text in plain.items():
        if insns[pc].opcode == 0xC3:  # STX | ATOMIC | W
            text = alu32[pc]
        assert format_insn(insns, pc) == text, f"pc {pc}"
        compared += 1
    assert compared >= len(insns) // 2


def _llvm_disassemble(chunks: list[bytes], alu32: bool) -> list[str | None]:
    """LLVM's text for each instruction (one per input line); None where LLVM 14
    cannot decode it."""
    cmd = ["llvm-mc", "-triple", "bpf", "--disassemble"] + (["-mattr=+alu32"] if alu32 else [])
    text = "\n".join(" ".join(f"{b:#04x}" for b in chunk) for chunk in chunks) + "\n"
    out = subprocess.run(cmd, input=text, capture_output=True, text=True, check=True)
    invalid = {int(n) for n in re.findall(r"<stdin>:(\d+):\d+: warning: invalid instruction",
                                          out.stderr)}
    printed = iter(_normalise(x) for x in out.stdout.splitlines()
                   if x.strip() and x.strip() != ".text")
    return [None if i + 1 in invalid else next(printed) for i in range(len(chunks))]


# Where our printing differs from LLVM 14 on purpose: LLVM prints a local call
# like a helper call ("call -3": we print "call pc-3", as bpftool does), reads
# callx's register from imm (RFC 9669 puts it in dst), and drops ldind's imm.
_DIFFERENT = {"call_local", "callx", "ldindb", "ldindh", "ldindw", "ldinddw"}


def test_disassembly_of_every_opcode_matches_llvm_where_llvm_decodes_it() -> None:
    samples = []
    for spec in TABLE:
        if spec.key in _DIFFERENT or spec.version >= 4:  # LLVM 14 misreads v4 as v1-v3
            continue
        if spec.kind is Kind.LDDW and spec.key != "lddw":
            continue  # LLVM prints map loads as ld_pseudo
        fields = {"dst": 1 if "dst" in spec.uses else 0, "src": 2 if spec.src_reg else 0,
                  "off": -8 if "off" in spec.uses else 0, "imm": 7 if "imm" in spec.uses else 0}
        if spec.kind is Kind.JCOND or spec.kind is Kind.JA:
            fields["off" if "off" in spec.uses else "imm"] = 3
        if spec.match:
            fields[spec.match[0]] = spec.match[1]
        insns = [Insn(spec.opcode, **fields)]
        if spec.kind is Kind.LDDW:
            insns.append(Insn(0, 0, 0, 0, 1))
        samples.append((spec, insns))
    decoded = 0
    for alu32 in (False, True):  # LLVM prints 32-bit atomics with w registers in alu32 mode
        mine = [(s, i) for s, i in samples if (s.opcode == 0xC3) == alu32]
        theirs = _llvm_disassemble([b"".join(x.encode() for x in i) for _, i in mine], alu32)
        for (spec, insns), text in zip(mine, theirs, strict=True):
            if text is not None:
                assert format_insn(insns, 0) == text, spec.key
                decoded += 1
    assert decoded >= 120
