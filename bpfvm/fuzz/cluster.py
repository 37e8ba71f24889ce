"""Fuzz campaigns on a Dask cluster (``bpfvm fuzz --cluster ADDR``).

The campaign's cases are cut into chunks of consecutive indexes; each chunk
is a task that runs a :class:`~bpfvm.fuzz.campaign.Worker` over its cases
(case ``i`` is the same pure function of ``(seed, i)`` as in a local
campaign) and returns its statistics and findings, reduced on the worker.
The client keeps two chunks per worker in flight until the time is up (or
``total_cases`` are handed out, or ``stop_after`` findings exist),
de-duplicates findings by signature (the lowest case index wins, whatever
the timing) and saves the reproducers here.  The corpus is read here and
sent to the workers once: they need bpfvm installed, no shared disk.
Callables in the configuration (``verifier``, ``confirm``) must be
importable by name on the workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bpfvm.errors import BpfvmError
from bpfvm.fuzz.builder import Case
from bpfvm.fuzz.campaign import CampaignResult, Config, Report, Stats, Worker, save
from bpfvm.fuzz.mutate import load_corpus

CHUNK = 256  # cases per task: well under a second of work, small against task overhead
IN_FLIGHT = 2  # chunks per worker handed out ahead


def run_chunk(config: Config, start: int, count: int, deadline: float,
              corpus: list[Case]) -> tuple[Stats, list[Report]]:
    """Cases ``start .. start + count - 1`` of the campaign until ``deadline``
    (seconds since the epoch: the client's clock, the worker's own timer)."""
    stats = Stats()
    reports: list[Report] = []

    def emit(kind: str, payload: Any) -> None:
        if kind == "stats":
            stats.add(payload)
        elif kind == "finding":
            reports.append(payload)

    cfg = replace(config, jobs=1, max_cases=count)
    Worker(cfg, start, corpus, emit).run(time.monotonic() + max(0.0, deadline - time.time()))
    return stats, reports


def campaign_on_cluster(
    config: Config, address: str,
    on_progress: Callable[[Stats, list[Report], float], None] | None = None,
    *, chunk: int = CHUNK, total_cases: int = 0, timeout: float = 10.0,
) -> CampaignResult:
    """Run ``config`` on the Dask scheduler at ``address`` (``config.jobs`` is
    ignored: every worker of the cluster takes chunks).  ``total_cases``
    (0: no limit) hands out exactly cases ``0 .. total_cases - 1``."""
    try:
        import distributed
    except ImportError:
        raise BpfvmError("--cluster needs Dask: pip install 'bpfvm[sweep]'") from None
    start = time.monotonic()
    corpus, skipped = load_corpus(config.corpus)
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise BpfvmError(f"--cluster {address}: cannot connect: {exc}") from None
    total = Stats()
    by_sig: dict[str, Report] = {}
    try:
        workers = len(client.scheduler_info().get("workers", {}))
        if not workers:
            raise BpfvmError(f"--cluster {address}: the scheduler has no workers")
        [shared] = client.scatter([corpus], broadcast=True)
        deadline = time.time() + config.seconds
        hard_stop = config.seconds + config.reduce_seconds + 30
        cursor = 0
        pending = distributed.as_completed(loop=client.loop)

        def more() -> bool:
            if time.time() >= deadline or (total_cases and cursor >= total_cases):
                return False
            return not (config.stop_after and len(by_sig) >= config.stop_after)

        def submit() -> None:
            nonlocal cursor
            count = min(chunk, total_cases - cursor) if total_cases else chunk
            pending.add(client.submit(run_chunk, config, cursor, count, deadline, shared,
                                      pure=False))
            cursor += count

        for _ in range(IN_FLIGHT * workers):
            if more():
                submit()
        futures_left = True
        while futures_left:
            try:
                fut = next(pending)
            except StopIteration:
                futures_left = False
                continue
            if time.monotonic() - start > hard_stop:
                break
            try:
                stats, reports = fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker ends the campaign cleanly
                raise BpfvmError(f"--cluster {address}: a chunk failed: {exc}") from None
            total.add(stats)
            for r in reports:
                sig = r.signature or r.finding.signature()
                if sig not in by_sig or r.index < by_sig[sig].index:
                    by_sig[sig] = r
            if on_progress is not None:
                on_progress(total, sorted(by_sig.values(), key=lambda r: r.index),
                            time.monotonic() - start)
            if more():
                submit()
            elif config.stop_after and len(by_sig) >= config.stop_after:
                for f in list(pending.futures):
                    f.cancel()
                break
    finally:
        client.close()
    reports = sorted(by_sig.values(), key=lambda r: r.index)
    if config.out:
        for report in reports:
            report.path = save(report, Path(config.out))
    return CampaignResult(total, reports, time.monotonic() - start, skipped)
