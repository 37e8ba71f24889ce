"""Tests of bpfvm.asm.assembler: both syntaxes, directives, the conformance
vectors, and the bad-assembly corpus (tests/data/asm/bad)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bpfvm.asm.assembler import AsmErrors, assemble, assemble_file, detect_syntax
from bpfvm.errors import BpfvmError
from bpfvm.helpers import Arg, HelperSpec, HelperTable, Ret
from bpfvm.isa.insn import Insn, check
from bpfvm.program import MapDef, SourceLoc
from tests.conftest import DATA, VECTORS

DATA = DATA / "asm"
HELPERS = HelperTable([
    HelperSpec(1, "map_lookup_elem", (Arg.MAP, Arg.MAP_KEY), Ret.MAP_VALUE_OR_NULL),
    HelperSpec(5, "ktime_get_ns", (), Ret.SCALAR),
])


def words(*hexwords: str) -> bytes:
    """Bytes from 16-hex-digit instruction words written as the bytes appear."""
    return b"".join(bytes.fromhex(w) for w in hexwords)


# (conformance text, kernel text, encoding) -- each pair must give the same bytes
SAME = [
    ("mov %r0, 1", "r0 = 1", "b700000001000000"),
    ("mov64 %r0, -1", "r0 = -1", "b7000000ffffffff"),
    ("mov %r1, 0xffffffff", "r1 = 0xffffffff", "b7010000ffffffff"),
    ("add32 %r1, %r2", "w1 += w2", "0c21000000000000"),
    ("arsh %r1, 3", "r1 s>>= 3", "c701000003000000"),
    ("neg %r1", "r1 = -r1", "8701000000000000"),
    ("neg32 %r1", "w1 = -w1", "8401000000000000"),
    ("sdiv %r1, %r2", "r1 s/= r2", "3f21010000000000"),
    ("smod32 %r1, 7", "w1 s%= 7", "9401010007000000"),
    ("movsx864 %r1, %r2", "r1 = (s8)r2", "bf21080000000000"),
    ("movsx1632 %r1, %r2", "w1 = (s16)w2", "bc21100000000000"),
    ("movsx3264 %r1, %r2", "r1 = (s32)r2", "bf21200000000000"),
    ("ldxw %r0, [%r1+4]", "r0 = *(u32 *)(r1 + 4)", "6110040000000000"),
    ("ldxw %r0, [%r1+4]", "w0 = *(u32 *)(r1 + 4)", "6110040000000000"),
    ("ldxsh %r0, [%r1-2]", "r0 = *(s16 *)(r1 - 2)", "8910feff00000000"),
    ("stxdw [%r10-8], %r1", "*(u64 *)(r10 - 8) = r1", "7b1af8ff00000000"),
    ("stw [%r10-4], 7", "*(u32 *)(r10 - 4) = 7", "620afcff07000000"),
    ("jeq %r1, 0, +3", "if r1 == 0 goto +3", "1501030000000000"),
    ("jslt32 %r1, %r2, +1", "if w1 s< w2 goto +1", "ce21010000000000"),
    ("jset %r1, 0x4, +1", "if r1 & 0x4 goto +1", "4501010004000000"),
    ("ja +3", "goto +3", "0500030000000000"),
    ("ja32 +3", "gotol +3", "0600000003000000"),
    ("lock add [%r1], %r2", "lock *(u64 *)(r1 + 0) += r2", "db21000000000000"),
    ("lock or32 [%r1], %r2", "lock *(u32 *)(r1 + 0) |= w2", "c321000040000000"),
    ("lock fetch add [%r1], %r2", "r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)",
     "db21000001000000"),
    ("lock fetch and32 [%r1], %r2", "w2 = atomic_fetch_and((u32 *)(r1 + 0), w2)",
     "c321000051000000"),
    ("lock xchg [%r1], %r2", "r2 = xchg_64(r1 + 0, r2)", "db210000e1000000"),
    ("lock xchg32 [%r1], %r2", "w2 = xchg32_32(r1 + 0, w2)", "c3210000e1000000"),
    ("lock cmpxchg [%r1], %r2", "r0 = cmpxchg_64(r1 + 0, r0, r2)", "db210000f1000000"),
    ("lock cmpxchg32 [%r1], %r2", "w0 = cmpxchg32_32(r1 + 0, w0, w2)", "c3210000f1000000"),
    ("be16 %r1", "r1 = be16 r1", "dc01000010000000"),
    ("le32 %r1", "r1 = le32 r1", "d401000020000000"),
    ("bswap64 %r1", "r1 = bswap64 r1", "d701000040000000"),
    ("swap32 %r1", "r1 = bswap32 r1", "d701000020000000"),
    ("lddw %r1, 0x123456789", "r1 = 0x123456789 ll", "1801000089674523" "0000000001000000"),
    ("call 1", "call 1", "8500000001000000"),
    ("call map_lookup_elem", "call map_lookup_elem", "8500000001000000"),
    ("call local +3", "call pc+3", "8510000003000000"),
    ("call %r2", "callx r2", "8d02000000000000"),
    ("exit", "exit", "9500000000000000"),
    ("ldabsb 4", "r0 = *(u8 *)skb[4]", "3000000004000000"),
    ("ldindh %r1, 4", "r0 = *(u16 *)skb[r1 + 4]", "4810000004000000"),
]


@pytest.mark.parametrize("conf,kern,encoding", SAME, ids=[k for _, k, _ in SAME])
def test_both_syntaxes_encode_alike(conf: str, kern: str, encoding: str) -> None:
    want = bytes.fromhex(encoding)
    assert assemble(conf, syntax="conformance", helpers=HELPERS).bytecode() == want
    assert assemble(kern, syntax="kernel", helpers=HELPERS).bytecode() == want
    # and detection finds the same without being told
    assert assemble(conf, helpers=HELPERS).bytecode() == want
    assert assemble(kern, helpers=HELPERS).bytecode() == want


@pytest.mark.parametrize("text,syntax", [
    ("mov %r0, 1\nexit", "conformance"),
    ("exit\nr0 = 1", "kernel"),
    ("start:\nja start", "conformance"),
    ("call local f\nf: exit", "conformance"),
    ("lock *(u64 *)(r1 + 0) += r2", "kernel"),
    ("# only a comment\nexit\ncall 1", None),
])
def test_detect_syntax(text: str, syntax: str | None) -> None:
    assert detect_syntax(text) == syntax


def test_labels_and_source_lines() -> None:
    prog = assemble("# count down\nmov %r0, 3\nloop:\n  sub %r0, 1\n"
                    "  jne %r0, 0, loop  # back\nlddw %r1, 5\nja exit\nexit\n", "c.s")
    assert prog.insns[2] == Insn(0x55, 0, 0, -2, 0)
    assert prog.insns[5] == Insn(0x05, 0, 0, 0, 0)  # implicit label 'exit'
    assert prog.source[0] == SourceLoc("c.s", 2)
    assert prog.source[3] == prog.source[4] == SourceLoc("c.s", 6)  # both lddw slots
    assert prog.name == "c"
    assert check(prog.insns) == []


def test_kernel_labels_and_local_calls() -> None:
    prog = assemble("r1 = 1\ncall fn\nexit\nfn:\nLBB0_1: r0 = r1\n"
                    "if r0 s> 10 goto LBB0_1\ngotol LBB0_1\nexit\n")
    assert prog.insns[1] == Insn(0x85, 0, 1, 0, 1)
    assert prog.insns[4] == Insn(0x65, 0, 0, -2, 10)
    assert prog.insns[5] == Insn(0x06, 0, 0, 0, -3)


def test_directives_maps_and_hook() -> None:
    text = """\
.syntax kernel
.hook placement
.map counts array key=4 value=8 entries=16
.map seen hash key=8 value=4 entries=1024
r1 = map[seen] ll
r2 = map_value[counts] + 8 ll
r3 = map[1] ll
.raw 0x0000000000000095
"""
    prog = assemble(text)
    assert prog.hook == "placement"
    assert prog.maps == [MapDef("counts", "array", 4, 8, 16), MapDef("seen", "hash", 8, 4, 1024)]
    assert prog.insns[0] == Insn(0x18, 1, 1, 0, 1)
    assert prog.insns[1] == Insn(0, 0, 0, 0, 0)
    assert prog.insns[2:4] == [Insn(0x18, 2, 2, 0, 0), Insn(0, 0, 0, 0, 8)]
    assert prog.insns[4] == Insn(0x18, 3, 1, 0, 1)
    assert prog.insns[6] == Insn(0x95)
    conf = assemble(".map counts array value=8 entries=16\nlddw %r1, map[counts]\n"
                    "lddw %r2, map_value[counts]+8\nexit")
    assert conf.insns[:4] == [Insn(0x18, 1, 1, 0, 0), Insn(0), Insn(0x18, 2, 2, 0, 0),
                              Insn(0, 0, 0, 0, 8)]


def test_errors_are_all_reported_with_caret() -> None:
    with pytest.raises(AsmErrors) as info:
        assemble("mov %r0, 1\nmov %r11, 1\nfoo\n\tadd %r1, 0x100000000\nexit", "e.s")
    errors = info.value.errors
    assert [(e.line, e.col) for e in errors] == [(2, 5), (3, 1), (4, 11)]
    text = str(info.value)
    assert "e.s:4:11: immediate 4294967296 does not fit in 32 bits\n" \
           "\tadd %r1, 0x100000000\n\t         ^" in text
    assert isinstance(info.value, BpfvmError) and info.value.exit_code == 2


def test_syntax_argument_and_directive_must_agree() -> None:
    with pytest.raises(AsmErrors, match="declares .syntax kernel but conformance"):
        assemble(".syntax kernel\nexit", syntax="conformance")
    with pytest.raises(BpfvmError, match="unknown syntax 'intel'"):
        assemble("exit", syntax="intel")


def test_assemble_file(tmp_path: Path) -> None:
    path = tmp_path / "p.s"
    path.write_text("r0 = 0\nexit\n")
    assert assemble_file(path).insns == [Insn(0xB7), Insn(0x95)]
    with pytest.raises(BpfvmError, match="cannot read"):
        assemble_file(tmp_path / "missing.s")


# ---- the bad-assembly corpus -----------------------------------------------------
def _bad_cases() -> list[Path]:
    return sorted((DATA / "bad").glob("*.s"))


def _expectations(path: Path) -> list[tuple[int, int, str]]:
    """``# expect: LINE:COL: message fragment`` lines of a corpus file."""
    out = []
    for line in path.read_text().splitlines():
        m = re.match(r"#\s*expect:\s*(\d+):(\d+):\s*(.+)$", line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), m.group(3).strip()))
    return out


def test_bad_corpus_is_large_enough() -> None:
    assert len(_bad_cases()) >= 30


@pytest.mark.parametrize("path", _bad_cases(), ids=lambda p: p.stem)
def test_bad_assembly(path: Path) -> None:
    expected = _expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    with pytest.raises(AsmErrors) as info:
        assemble_file(path, helpers=HELPERS)
    got = [(e.line, e.col, e.message) for e in info.value.errors]
    assert len(got) == len(expected), str(info.value)
    for (line, col, fragment), (gline, gcol, message) in zip(expected, got, strict=True):
        assert (line, col) == (gline, gcol), str(info.value)
        assert fragment in message
    for e in info.value.errors:
        assert str(e).startswith(f"{path}:{e.line}:{e.col}: ")


# ---- good programs and conformance vectors ------------------------------------------
@pytest.mark.parametrize("path", sorted((DATA / "good").glob("*.s")), ids=lambda p: p.stem)
def test_good_programs_assemble_and_check(path: Path) -> None:
    prog = assemble_file(path, helpers=HELPERS)
    assert check(prog.insns, HELPERS) == []


def _sections(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("--"):
            current = line[2:].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def _vectors() -> list[Path]:
    return sorted(VECTORS.glob("*.data")) if VECTORS.is_dir() else []


needs_vectors = pytest.mark.skipif(not VECTORS.is_dir(),
                                   reason=f"conformance vectors not found at {VECTORS}")


@needs_vectors
def test_every_conformance_vector_assembles() -> None:
    vectors = _vectors()
    assert len(vectors) == 313
    failures = []
    for path in vectors:
        asm = "\n".join(_sections(path).get("asm", []))
        try:
            prog = assemble(asm, str(path))
        except AsmErrors as exc:
            failures.append(str(exc))
            continue
        if problems := check(prog.insns):
            failures.append(f"{path.name}: {problems}")
    assert failures == []


@needs_vectors
@pytest.mark.parametrize("name,hexwords", [
    ("lddw", ("1800000088776655", "0000000044332211", "9500000000000000")),
    ("callx", ("b7010000ffffffff", "b702000005000000", "8d02000000000000",
               "b700000002000000", "9500000000000000")),
    ("ja32", ("b701000000000000", "0600000002000000", "b702000000000000",
              "9500000000000000", "b700000000000000", "06000000fcffffff")),
    ("lock_fetch_add32", None),
    ("movsx1632-reg", None),
])
def test_vectors_match_hand_encoding(name: str, hexwords: tuple[str, ...] | None) -> None:
    sections = _sections(VECTORS / f"{name}.data")
    prog = assemble("\n".join(sections["asm"]))
    if "raw" in sections:
        raw = [int(w.split("#")[0], 16) for w in sections["raw"] if w.strip()]
        assert prog.bytecode() == b"".join(w.to_bytes(8, "little") for w in raw)
    if hexwords is not None:
        assert prog.bytecode() == words(*hexwords)
    if name == "lock_fetch_add32":
        assert Insn(0xC3, 10, 1, -8, 1) in prog.insns  # lock fetch add32 [%r10-8], %r1
    if name == "movsx1632-reg":
        assert Insn(0xBC, 0, 1, 16, 0) in prog.insns


def test_jump_beyond_16_bits_needs_gotol() -> None:
    filler = "mov %r0, 0\n" * 32768
    with pytest.raises(AsmErrors) as info:
        assemble(f"jeq %r1, 0, far\n{filler}far:\nexit\n")
    (error,) = info.value.errors
    assert (error.line, error.col) == (1, 13)
    assert "32768 slots away" in error.message and "ja32/gotol" in error.message
    prog = assemble(f"ja32 far\n{filler}far:\nexit\n")
    assert prog.insns[0] == Insn(0x06, 0, 0, 0, 32768)


def test_bpftool_spellings() -> None:
    """bpftool prints pc-relative targets and the kernel's helper names."""
    prog = assemble("goto pc+1\nif r1 == 0x0 goto pc-2\ncall bpf_map_lookup_elem\n"
                    "r1 = 010\nexit", helpers=HELPERS)
    assert prog.insns == [Insn(0x05, 0, 0, 1, 0), Insn(0x15, 1, 0, -2, 0),
                          Insn(0x85, 0, 0, 0, 1), Insn(0xB7, 1, 0, 0, 10), Insn(0x95)]


@pytest.mark.parametrize("text", [
    "r0 = 1 ; llvm style\nexit",
    "r0 = 1 // C style\nexit",
    "r0 = 1 # shell style\nexit",
    "  ; a whole-line comment\nr0 = 1\n\n\nexit",
])
def test_comments(text: str) -> None:
    assert assemble(text).insns == [Insn(0xB7, 0, 0, 0, 1), Insn(0x95)]
