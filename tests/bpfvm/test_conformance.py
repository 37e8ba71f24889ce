"""The conformance-vector reader and runner, and all vectors on the interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfvm.conformance import (
    VectorError,
    find_vectors,
    load_vector,
    parse_vector,
    run_vector,
)
from bpfvm.interp.interpreter import Interpreter
from tests.conftest import CONFORMANCE

VECTORS = sorted((CONFORMANCE / "tests").glob("*.data")) if CONFORMANCE.is_dir() else []
needs_shared = pytest.mark.skipif(not VECTORS, reason=f"conformance vectors absent ({CONFORMANCE})")

RAW = """\
# Copyright line
-- asm
lddw %r0, 0x1122334455667788   # trailing comment
exit
-- raw
0x5566778800000018
0x1122334400000000
0x0000000000000095
-- result
0x1122334455667788
"""


def test_parse_sections_and_comments() -> None:
    v = parse_vector(RAW, "dir/lddw.data")
    assert v.name == "lddw.data"
    assert v.asm == "lddw %r0, 0x1122334455667788\nexit\n"
    assert v.raw == (0x5566778800000018, 0x1122334400000000, 0x95)
    assert v.result == 0x1122334455667788 and v.mem == b"" and v.skip is None


@pytest.mark.parametrize(("text", "want"), [("-- result\n0x1F\n", 31), ("-- result\n10\n", 10),
                                            ("-- result\n-1\n", (1 << 64) - 1)])
def test_result_is_hex_with_0x_else_decimal(text: str, want: int) -> None:
    assert parse_vector("-- asm\nexit\n" + text).result == want


def test_mem_spans_lines() -> None:
    v = parse_vector("-- asm\nexit\n-- mem\n00 01\n02 ff\n-- result\n0\n")
    assert v.mem == b"\x00\x01\x02\xff"


def test_legacy_marker_does_not_hide_later_sections() -> None:
    v = parse_vector("-- asm\nexit\n-- no register offset\nwhatever\n-- result\n0x8\n")
    assert v.result == 8 and v.skip is None


@pytest.mark.parametrize(("text", "reason"), [
    ("-- asm\nexit\n-- frobnicate\nx\n-- result\n0\n", "unknown section '-- frobnicate'"),
    ("-- asm\nexit\n", "no '-- result' or '-- error' section"),
    ("-- result\n1\n", "no program"),
])
def test_vectors_that_cannot_run_are_skipped_with_a_reason(text: str, reason: str) -> None:
    v = parse_vector(text)
    assert v.skip is not None and reason in v.skip
    outcome = run_vector(v)
    assert outcome.status == "skip" and reason in outcome.message


@pytest.mark.parametrize(("text", "message"), [
    ("-- asm\nexit\n-- mem\nzz\n-- result\n0\n", "v.data: -- mem: not hex bytes"),
    ("-- asm\nexit\n-- result\nlots\n", "v.data: -- result: not a number"),
    ("mov %r0, 1\n-- result\n1\n", "v.data: text before the first section"),
])
def test_malformed_vectors_say_where(text: str, message: str) -> None:
    with pytest.raises(VectorError, match=message):
        parse_vector(text, "v.data")


def test_run_raw_vector_passes() -> None:
    outcome = run_vector(parse_vector(RAW, "lddw.data"))
    assert outcome.passed and outcome.actual == 0x1122334455667788


def test_wrong_result_fails_with_both_values() -> None:
    v = parse_vector(RAW.replace("-- result\n0x1122334455667788", "-- result\n0x5"))
    outcome = run_vector(v)
    assert outcome.status == "fail"
    assert outcome.message == "r0 is 0x1122334455667788, expected 0x5"


def test_fault_is_a_failure_not_an_exception() -> None:
    text = "-- raw\n0x0000000000000061\n0x0000000000000095\n-- result\n0\n"  # ldxw r0, [r0]
    outcome = run_vector(parse_vector(text))
    assert outcome.status == "fail" and "null pointer" in outcome.message


def test_expected_error_passes_when_the_run_fails() -> None:
    text = "-- raw\n0x0000000000000061\n0x0000000000000095\n-- error\nnull pointer\n"
    assert run_vector(parse_vector(text)).passed
    ok = "-- raw\n0x00000000000000b7\n0x0000000000000095\n-- error\nanything\n"
    assert run_vector(parse_vector(ok)).status == "fail"


def test_engine_factory_is_used() -> None:
    made = []

    def factory(program, helpers):  # type: ignore[no-untyped-def]
        made.append(program)
        return Interpreter(program, helpers)

    assert run_vector(parse_vector(RAW, "lddw.data"), factory).passed
    assert len(made) == 1 and made[0].name == "lddw"


def test_find_vectors(tmp_path: Path) -> None:
    (tmp_path / "b.data").write_text(RAW)
    (tmp_path / "a.data").write_text(RAW)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in find_vectors([tmp_path])] == ["a.data", "b.data"]
    with pytest.raises(VectorError, match="no such file"):
        find_vectors([tmp_path / "missing.data"])
    with pytest.raises(VectorError, match="missing.data"):
        load_vector(tmp_path / "missing.data")


@needs_shared
def test_there_are_313_vectors() -> None:
    assert len(VECTORS) == 313


@needs_shared
@pytest.mark.parametrize("path", VECTORS, ids=[p.name for p in VECTORS])
def test_vector_on_interpreter(path: Path) -> None:
    outcome = run_vector(load_vector(path))
    assert outcome.passed, f"{outcome.status}: {outcome.message}"
