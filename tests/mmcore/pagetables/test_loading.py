"""Tests of mmcore.pagetables.loading: sections, the region-size constant, load counting."""


import pytest

from bpfvm.asm.assembler import AsmErrors
from bpfvm.errors import BpfvmError
from bpfvm.load import Rejected
from bpfvm.stdhelpers import standard_helpers
from mmcore.hooks.specs import PT_LOOKUP
from mmcore.pagetables.loading import (
    LoadCounter,
    PtProgramError,
    PtPrograms,
    region_size_of,
    with_region_size,
)
from tests.conftest import PROGRAMS
from tests.mmcore.machines import pt_sections

PROGRAMS = PROGRAMS

# a trivial table: the PTE of every va is the slot at offset 64
TRIVIAL = """\
# one slot for everything
.hook pt_map
    r9 = 4096 ll
    r0 = *(u64 *)(r1 + 0)
    r0 += 64
    exit
.hook pt_unmap
    r9 = 4096 ll
    r0 = 0
    exit
.hook pt_lookup
    r9 = 4096 ll
    r2 = *(u64 *)(r1 + 0)
    r3 = *(u64 *)(r2 + 0)
    r3 = *(u64 *)(r2 + 60)
    r0 = r2
    r0 += 64
    exit
"""


def test_sections_keep_file_line_numbers():
    progs = pt_sections(TRIVIAL, "t.s")
    assert sorted(progs) == ["pt_lookup", "pt_map", "pt_unmap"]
    assert str(progs["pt_lookup"].source[0]) == "t.s:12"
    assert progs["pt_map"].hook == "pt_map"
    assert progs["pt_unmap"].name == "t:pt_unmap"


@pytest.mark.parametrize("text, message", [
    (TRIVIAL.replace(".hook pt_unmap", ".hook pt_map"), "a second section for hook pt_map"),
    (TRIVIAL[:TRIVIAL.index(".hook pt_lookup")], "no section for hook(s) pt_lookup"),
    (TRIVIAL.replace("r9 = 4096 ll\n    r0 = 0", "r8 = 4096 ll\n    r0 = 0"),
     "t.s:8: the pt_unmap section must start with 'r9 = <region bytes> ll'"),
    (TRIVIAL + ".hook placement\n    r9 = 1 ll\n    r0 = 0\n    exit\n",
     "section for placement, not a page-table hook"),
])
def test_bad_files(text, message):
    with pytest.raises(BpfvmError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pt_sections(text, "t.s")


def test_assembly_errors_name_the_file_line():
    with pytest.raises(AsmErrors, match=r"t\.s:14:"):
        pt_sections(TRIVIAL.replace("r3 = *(u64 *)(r2 + 0)", "r3 = bogus"), "t.s")


def test_region_size_constant():
    prog = pt_sections(TRIVIAL, "t.s")["pt_map"]
    big = with_region_size(prog, 3 << 20)
    assert region_size_of(prog) == 4096 and region_size_of(big) == 3 << 20
    assert big.insns[2:] == prog.insns[2:] and len(big.insns) == len(prog.insns)


def test_size_constant_may_follow_register_moves():
    # clang may copy the context pointer before the constant: r9's first write counts
    text = TRIVIAL.replace("    r9 = 4096 ll\n    r0 = *(u64 *)(r1 + 0)",
                           "    r6 = r1\n    r0 = *(u64 *)(r6 + 0)\n    r9 = 4096 ll")
    prog = pt_sections(text, "t.s")["pt_map"]
    assert prog.leading_constant(9) == 2 and region_size_of(prog) == 4096
    big = with_region_size(prog, 8192)
    assert region_size_of(big) == 8192 and big.insns[:2] == prog.insns[:2]


@pytest.mark.parametrize("before", ["if r1 == 0 goto +0", "r9 = r1", "call 5"])
def test_size_constant_after_a_jump_call_or_write_of_r9_is_refused(before):
    text = TRIVIAL.replace("    r9 = 4096 ll\n    r0 = 0", f"    {before}\n    r9 = 4096 ll\n"
                           "    r0 = 0")
    with pytest.raises(PtProgramError, match="the pt_unmap section must start with"):
        pt_sections(text, "t.s")


def test_for_region_verifies_and_caches():
    pp = PtPrograms("t", pt_sections(TRIVIAL, "t.s"), standard_helpers())
    first = pp.for_region(8192)
    assert pp.for_region(8192) is first
    assert all(region_size_of(p) == 8192 for p in first.values())
    with pytest.raises(Rejected):  # the slot at 64 does not fit in a 64-byte region
        pp.for_region(64)


@pytest.mark.parametrize("name", ["hashed_pt", "learned_pt"])
def test_shipped_programs_load(name):
    pp = PtPrograms.from_file(PROGRAMS / f"{name}.s")
    assert set(pp.for_region(1 << 16)) == {"pt_map", "pt_unmap", "pt_lookup"}


def test_unreadable_file():
    with pytest.raises(PtProgramError, match="cannot read"):
        PtPrograms.from_file("/nonexistent/x.s")


def test_load_counter_counts_lines_of_the_watched_buffer():
    prog = with_region_size(pt_sections(TRIVIAL, "t.s")["pt_lookup"], 4096)
    lc = LoadCounter(prog, standard_helpers())
    buf = bytearray(4096)
    addr = lc.watch(buf)
    ctx = bytearray(PT_LOOKUP.ctx_size)
    ctx[0:8] = addr.to_bytes(8, "little")
    assert lc.run(ctx) == addr + 64
    # loads at 0 and 60..67: lines 0 and 1; the ctx load is not in the buffer
    assert lc.lines == {0, 1}
