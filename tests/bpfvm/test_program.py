"""Program objects: save and load in both file forms, map declarations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpfvm.errors import BpfvmError
from bpfvm.isa.insn import Insn, lddw
from bpfvm.program import MapDef, Program, SourceLoc


def _program() -> Program:
    insns = [*lddw(1, 0, src=1), Insn(0xB7, 0, 0, 0, 3), Insn(0x95)]
    return Program(insns, [MapDef("counts", "array", 4, 8, 16)], "placement",
                   [SourceLoc("p.s", 3), None, SourceLoc("p.s", 4), SourceLoc("p.s", 5)], "p")


def test_json_object_round_trip(tmp_path: Path) -> None:
    prog = _program()
    prog.save(tmp_path / "p.json")
    back = Program.from_json(json.loads((tmp_path / "p.json").read_text()))
    assert back == prog


def test_raw_bin_keeps_only_instructions(tmp_path: Path) -> None:
    prog = _program()
    prog.save(tmp_path / "p.bin")
    data = (tmp_path / "p.bin").read_bytes()
    assert len(data) == 32
    back = Program.load_bytes(data)
    assert back.insns == prog.insns and back.maps == [] and back.hook is None


def test_where_uses_the_source_map() -> None:
    prog = _program()
    assert prog.where(0) == "p.s:3" and prog.where(1) == "pc 1" and prog.where(99) == "pc 99"


def test_bad_object_files_say_what() -> None:
    with pytest.raises(BpfvmError, match="x.json: format"):
        Program.from_json({"format": "nope"}, "x.json")
    with pytest.raises(BpfvmError, match="x.json: bytecode: 2 hex digits is not a whole number"):
        Program.from_json({"format": "bpfvm-object/1", "bytecode": "zz"}, "x.json")
    bad_map = {"format": "bpfvm-object/1", "bytecode": "9500000000000000",
               "maps": [["m", "queue", 4, 4, 1]]}
    with pytest.raises(BpfvmError, match=r"x.json: maps\[0\]: map m: unknown map type 'queue'"):
        Program.from_json(bad_map, "x.json")


@pytest.mark.parametrize("mapdef,problem", [
    (MapDef("a", "array", 8, 8, 1), "array maps have 4-byte keys"),
    (MapDef("a", "hash", 0, 8, 1), "key_size must be between 1"),
    (MapDef("a", "hash", 8, 8, 0), "max_entries must be between 1"),
    (MapDef("a", "hash", 8, 8, 1), None),
])
def test_map_declaration_checks(mapdef: MapDef, problem: str | None) -> None:
    got = mapdef.problem()
    assert (got is None) if problem is None else (problem in got)


def test_leading_constant_is_the_first_write_of_the_register() -> None:
    mov = Insn(0xBF, 6, 1, 0, 0)  # r6 = r1
    prog = Program([mov, *lddw(9, 4096), Insn(0x95)])
    assert prog.leading_constant(9) == 1 and prog.constant(1) == (9, 4096)
    assert prog.with_constant(1, 8192).constant(1) == (9, 8192)
    assert prog.leading_constant(6) is None  # written first by a move
    assert prog.leading_constant(7) is None  # never written before the exit
    after_lddw = Program([*lddw(2, 7), *lddw(9, 1), Insn(0x95)])
    assert after_lddw.leading_constant(9) == 2  # an lddw's second slot is stepped over
    map_handle = Program([*lddw(9, 0, src=1), Insn(0x95)])
    assert map_handle.leading_constant(9) is None  # not a plain constant
    jump_first = Program([Insn(0x05, 0, 0, 0, 0), *lddw(9, 1), Insn(0x95)])
    assert jump_first.leading_constant(9) is None
    far = Program([mov] * 16 + [*lddw(9, 1), Insn(0x95)])
    assert far.leading_constant(9) is None and far.leading_constant(9, within=20) == 16
