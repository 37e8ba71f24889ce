"""Progress of long work: the assembler's and the verifier's callbacks, and
the bars of ``bpfvm.cli.busy`` (drawn on a terminal only)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

from bpfvm.asm.assembler import PROGRESS_LINES, assemble
from bpfvm.asm.sections import split_sections
from bpfvm.cli import busy, main
from bpfvm.stdhelpers import standard_helpers
from verifier import verify
from verifier.analysis import PROGRESS_VISITS

N = 3 * PROGRESS_LINES + 100  # instructions of the long straight-line program


def straight(n: int = N) -> str:
    return "".join(f"r{i % 9} = {i}\n" for i in range(n)) + "r0 = 0\nexit\n"


def test_assembler_reports_lines_read() -> None:
    calls: list[tuple[int, int]] = []
    text = straight()
    assemble(text, progress=lambda done, total: calls.append((done, total)))
    lines = len(text.splitlines())
    assert calls == [(k * PROGRESS_LINES, lines) for k in range(1, lines // PROGRESS_LINES + 1)] \
        + [(lines, lines)]


def test_sections_report_one_growing_count() -> None:
    text = ".hook pt_map\nr0 = 0\nexit\n.hook pt_unmap\nr0 = 0\nexit\n"
    calls: list[tuple[int, int]] = []
    split_sections(text, progress=lambda done, total: calls.append((done, total)))
    lines = len(text.splitlines())
    assert calls == [(lines, 2 * lines), (2 * lines, 2 * lines)]


def test_verifier_reports_visits_of_a_straight_program() -> None:
    program = assemble(straight())
    calls: list[tuple[int, int]] = []
    verdict = verify(program, helpers=standard_helpers(),
                     progress=lambda done, total: calls.append((done, total)))
    assert verdict.accepted
    assert calls == [(k * PROGRESS_VISITS, len(program.insns))
                     for k in range(1, len(program.insns) // PROGRESS_VISITS + 1)]


def test_verifier_reports_visits_of_a_loop_against_the_budget() -> None:
    # a long loop body: the worklist visits it more than once
    body = "r2 = 1\n" * PROGRESS_VISITS
    program = assemble(f"r1 = 0\nloop:\n{body}r1 += 1\nif r1 < 10 goto loop\nr0 = 0\nexit\n")
    calls: list[tuple[int, int]] = []
    verdict = verify(program, helpers=standard_helpers(), budget=100_000,
                     progress=lambda done, total: calls.append((done, total)))
    assert verdict.accepted and verdict.stats["visits"] > 2 * PROGRESS_VISITS
    assert calls == [(k * PROGRESS_VISITS, 100_000)
                     for k in range(1, verdict.stats["visits"] // PROGRESS_VISITS + 1)]


def test_without_a_callback_the_verdict_is_the_same() -> None:
    program = assemble(straight(200))
    table = standard_helpers()
    seen: list[int] = []
    with_cb = verify(program, helpers=table, progress=lambda d, t: seen.append(d))
    without = verify(program, helpers=table)
    assert (with_cb.accepted, with_cb.stats["visits"]) == (without.accepted,
                                                           without.stats["visits"])


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(busy, "SHOW_AFTER", 0.0)
    prog = tmp_path / "long.s"
    prog.write_text(straight())
    assert main(["verify", str(prog)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "accepted" in captured.out
    with busy.busy("x", "lines", after=0.0) as step:
        assert step is None  # no callback: the work is not even slowed


def _terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    term = Console(file=out, force_terminal=True, width=100)
    monkeypatch.setattr(busy, "_terminal", lambda quiet: None if quiet else term)
    return out


def test_bar_on_a_terminal_after_the_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _terminal(monkeypatch)
    with busy.busy("assembling big.s", "lines", after=0.0) as step:
        assert step is not None
        step(10, 20)
        step(20, 20)
    assert "assembling big.s" in out.getvalue() and "20/20" in out.getvalue()


def test_no_bar_for_short_work_nor_for_json(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _terminal(monkeypatch)
    with busy.busy("short", "lines", after=60.0) as step:
        assert step is not None
        step(1, 2)
    with busy.busy("json", "lines", quiet=True, after=0.0) as step:
        assert step is None
    with busy.busy_while("json", quiet=True, after=0.0):
        time.sleep(0.05)
    assert out.getvalue() == ""


def test_open_ended_bar_for_silent_work(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _terminal(monkeypatch)
    with busy.busy_while("JIT compiling", after=0.01):
        time.sleep(0.3)
    assert "JIT compiling" in out.getvalue()
    out.truncate(0)
    with busy.busy_while("quick", after=30.0):
        pass
    assert "quick" not in out.getvalue()


def test_run_json_draws_no_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = _terminal(monkeypatch)
    monkeypatch.setattr(busy, "SHOW_AFTER", 0.0)
    prog = tmp_path / "p.s"
    prog.write_text(straight(50))
    assert main(["run", str(prog), "--json"]) == 0
    assert out.getvalue() == ""
