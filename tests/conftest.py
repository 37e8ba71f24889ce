"""Shared paths of the test suite and the note on optional corpora.

Every test module takes its paths from here: ``ROOT`` (the checkout),
``DATA`` (``tests/data``), ``PROGRAMS`` (the shipped policies) and
``CONFORMANCE`` (the BPF conformance vectors in ``../shared/conformance``,
used by path and never copied).  Where the vectors are absent the tests
that need them skip, and the summary says so once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
PROGRAMS = ROOT / "programs"
CONFORMANCE = ROOT.parent / "shared" / "conformance"
VECTORS = CONFORMANCE / "tests"
needs_conformance = pytest.mark.skipif(
    not VECTORS.is_dir(), reason=f"conformance vectors absent ({CONFORMANCE})")


def conformance_vectors() -> list[Path]:
    """The ``.data`` vectors, sorted; empty where the corpus is absent."""
    return sorted(VECTORS.glob("*.data")) if VECTORS.is_dir() else []


def pytest_report_header(config: pytest.Config) -> str:
    state = "present" if VECTORS.is_dir() else "ABSENT: tests that need them skip"
    return f"conformance vectors: {CONFORMANCE} ({state})"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if not VECTORS.is_dir():
        terminalreporter.write_line(
            f"note: conformance vectors not found at {CONFORMANCE}; the tests that run them "
            "were skipped", yellow=True)
