"""Progress for long work of the one-shot commands (assembling or verifying a
large file, a JIT compile), on standard error when it is a terminal.

:func:`busy` hands a ``(done, total)`` callback to the assembler or the
verifier; the bar (:func:`bpfvm.cli.common.progress`) appears only once the
work has lasted :data:`SHOW_AFTER` seconds, so short runs print nothing.
:func:`busy_while` shows an open-ended bar for work that reports nothing
(a JIT compile) once it has lasted as long.  Neither draws anything when
standard error is not a terminal or when the command writes JSON: the
callback is then None and the work is not slowed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SHOW_AFTER = 1.0  # seconds of work before a bar appears


def _terminal(quiet: bool) -> Any:
    """The stderr console, when a bar may be drawn on it (rich is imported
    only then)."""
    if quiet:
        return None
    try:
        if not sys.stderr.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    from bpfvm.cli.common import console

    err = console(stderr=True)
    return err if err.is_terminal else None


@contextmanager
def busy(label: str, unit: str, *, quiet: bool = False,
         after: float = SHOW_AFTER) -> Iterator[Callable[[int, int], None] | None]:
    """A ``(done, total)`` callback drawing a bar labelled ``label`` counting
    ``unit``, or None when no bar may be drawn (``quiet``: JSON output)."""
    err = _terminal(quiet)
    if err is None:
        yield None
        return
    from bpfvm.cli.common import progress

    start = time.monotonic()
    bar = progress(err, unit)
    task: list[Any] = []

    def update(done: int, total: int) -> None:
        if not task:
            if time.monotonic() - start < after:
                return
            bar.start()
            task.append(bar.add_task(label, total=total))
        bar.update(task[0], completed=done, total=total)

    try:
        yield update
    finally:
        if task:
            bar.stop()


@contextmanager
def busy_while(label: str, *, quiet: bool = False, after: float = SHOW_AFTER) -> Iterator[None]:
    """An open-ended bar labelled ``label`` while the body runs, shown once
    it has lasted ``after`` seconds."""
    err = _terminal(quiet)
    if err is None:
        yield
        return
    import threading

    from bpfvm.cli.common import progress

    bar = progress(err, "")
    lock = threading.Lock()
    shown: list[bool] = []

    def show() -> None:
        with lock:
            if not shown:
                bar.start()
                bar.add_task(label, total=None)
                shown.append(True)

    timer = threading.Timer(after, show)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            if shown:
                bar.stop()
            shown.append(False)  # a timer firing late draws nothing
