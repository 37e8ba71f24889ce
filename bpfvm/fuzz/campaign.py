"""The fuzzing campaign: generate or mutate, verify, run the oracles, reduce, report.

:func:`campaign` runs ``jobs`` workers for ``seconds``.  Case ``i`` of a
campaign is a pure function of ``(seed, i)`` (worker ``w`` takes the cases
``i = w, w + jobs, ...``), so a seed names the same sequence of programs on
every machine; how far a campaign gets into it depends on the time given.
Each case is a generated program (:mod:`bpfvm.fuzz.builder`) or a mutant of a
corpus or generated program (:mod:`bpfvm.fuzz.mutate`), checked by the
oracles of :mod:`bpfvm.fuzz.oracles`.  A finding is reduced by delta
debugging (:mod:`bpfvm.fuzz.reduce`) while the same oracle keeps firing,
and saved as a ``.s`` reproducer whose comment header carries the oracle's
message (plus the program as a JSON object, which keeps maps and hook).
Findings are de-duplicated by signature (the lowest case index wins, whatever
the timing of the workers) and saved at the end.  Statistics stream to a callback
(the CLI draws them live with rich).
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfvm.fuzz.builder import Case
from bpfvm.fuzz.generate import generate
from bpfvm.fuzz.mutate import load_corpus, mutate, tables
from bpfvm.fuzz.oracles import Finding, Oracles
from bpfvm.fuzz.reduce import reduce
from bpfvm.program import Program

STATS_EVERY = 0.5  # seconds between progress messages of a worker


@dataclass
class Config:
    seconds: float = 20.0
    seed: int = 1
    jobs: int = 1
    corpus: list[str] = field(default_factory=list)
    out: str | None = None  # directory for reproducers (None: keep in memory only)
    runs: int = 3  # concrete inputs per accepted program
    jit_every: int = 0  # run the JIT oracle on one accepted case in N (0: never)
    bad: float = 0.06  # probability of a defect per generated snippet
    mutants: float = 0.3  # share of cases that are mutants
    reduce_seconds: float = 10.0
    stop_after: int = 0  # stop once this many distinct findings exist (0: never)
    max_cases: int = 0  # stop after this many cases per worker (0: no limit)
    # replaces verifier.verify; callables reach parallel workers only where they fork
    verifier: Callable[..., Any] | None = None
    # a finding counts only if confirm(case, finding, inputs) holds, ``inputs`` being
    # the seed of the concrete inputs that showed it (e.g. "the unmodified verifier
    # handles this program": mutation testing); also steers the reduction
    confirm: Callable[[Case, Finding, str], bool] | None = None


@dataclass
class Stats:
    cases: int = 0
    wellformed: int = 0
    accepted: int = 0
    runs: int = 0
    jit: int = 0
    findings: int = 0
    verify_seconds: float = 0.0
    by_oracle: Counter = field(default_factory=Counter)

    def add(self, other: Stats) -> None:
        for name in ("cases", "wellformed", "accepted", "runs", "jit", "findings",
                     "verify_seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_oracle.update(other.by_oracle)


@dataclass
class Report:
    """One de-duplicated finding with its minimized reproducer."""

    finding: Finding
    index: int
    target: str
    notes: list[str]
    original_slots: int
    program: Program
    text: str
    signature: str = ""  # of the finding as first seen (before reduction): de-duplication
    path: str | None = None


@dataclass
class CampaignResult:
    stats: Stats
    reports: list[Report]
    seconds: float
    skipped_corpus: list[str]


def case_at(config: Config, index: int, corpus: list[Case], tabs: Any) -> Case:
    """Case ``index`` of the campaign seeded ``config.seed``."""
    rng = random.Random(f"{config.seed}:{index}")
    r = rng.random()
    if r < config.mutants:
        if corpus and rng.random() < 0.5:
            base = rng.choice(corpus)
        else:
            base = generate(rng.getrandbits(64), bad=config.bad / 2)
        return mutate(base, rng, tabs)
    return generate(rng.getrandbits(64), bad=config.bad)


def reproducer(case: Case, finding: Finding, index: int, config: Config) -> str:
    """The ``.s`` text of a finding: comment header, then the program."""
    t = case.target
    head = [f"# bpfvm fuzz finding ({finding.oracle}): {finding.message}"]
    if finding.detail:
        head.append(f"# input: {finding.detail}")
    what = f"hook {t.hook.name}" if t.hook else f"mem, context of {t.ctx_size} bytes"
    head.append(f"# target: {what}; campaign seed {config.seed}, case {index}")
    head.append(f"# reproduce: bpfvm verify FILE {'--hook ' + t.hook.name if t.hook else ''}"
                f"{'' if t.hook else '--ctx-size ' + str(t.ctx_size)}".rstrip())
    return "\n".join(head) + "\n" + program_text(case.program)


def program_text(program: Program) -> str:
    try:
        from bpfvm.asm.disasm import disassemble
    except ImportError:
        return "".join(f"# {i.encode().hex()}\n" for i in program.insns)
    return disassemble(program, syntax="kernel")


class Worker:
    """Checks the cases of one worker; reports via ``emit(kind, payload)``."""

    def __init__(self, config: Config, worker: int, corpus: list[Case],
                 emit: Callable[[str, Any], None]) -> None:
        self.config, self.worker, self.corpus, self.emit = config, worker, corpus, emit
        self.oracles = Oracles(runs=config.runs, verifier=config.verifier)
        self.tabs = tables()
        self.seen: set[str] = set()
        self.index = worker
        self.done = 0

    def run(self, deadline: float, stop: Callable[[], bool] = lambda: False) -> None:
        cfg = self.config
        stats = Stats()
        last = time.monotonic()
        while time.monotonic() < deadline and not stop() and not (
                cfg.max_cases and self.done >= cfg.max_cases):
            index = self.index
            case = case_at(cfg, index, self.corpus, self.tabs)
            jit = bool(cfg.jit_every) and index % cfg.jit_every == 0
            inputs = f"{cfg.seed}:{index}:in"
            out = self.oracles.check(case, random.Random(inputs), jit)
            stats.cases += 1
            stats.wellformed += out.wellformed
            stats.accepted += out.accepted
            stats.runs += out.runs
            stats.jit += out.jit_checked
            stats.verify_seconds += out.verify_seconds
            if out.finding is not None and cfg.confirm is not None and \
                    not cfg.confirm(case, out.finding, inputs):
                out.finding = None
            if out.finding is not None:
                stats.by_oracle[out.finding.oracle] += 1
                sig = out.finding.signature()
                if sig not in self.seen:
                    self.seen.add(sig)
                    stats.findings += 1
                    self.emit("finding", self.report(case, out.finding, index, jit))
            now = time.monotonic()
            if now - last >= STATS_EVERY:
                self.emit("stats", stats)
                stats, last = Stats(), now
            self.index += cfg.jobs
            self.done += 1
        self.emit("stats", stats)

    def report(self, case: Case, finding: Finding, index: int, jit: bool) -> Report:
        oracle = finding.oracle
        cfg = self.config
        found: list[Finding] = [finding]

        def interesting(program: Program) -> bool:
            small = Case(program, case.target)
            inputs = f"{cfg.seed}:{index}:in"
            got = self.oracles.check(small, random.Random(inputs), jit)
            if got.finding is None or got.finding.oracle != oracle:
                return False
            if cfg.confirm is not None and not cfg.confirm(small, got.finding, inputs):
                return False
            found.append(got.finding)
            return True

        small = reduce(case.program, interesting, seconds=cfg.reduce_seconds)
        # the message of the smallest program that still fails
        last = found[-1] if small is not case.program else finding
        small_case = Case(small, case.target, case.notes)
        return Report(last, index, case.target.name, case.notes, len(case.program.insns), small,
                      reproducer(small_case, last, index, cfg), finding.signature())


def _process_main(config: Config, worker: int, deadline_in: float, q: Any,
                  corpus: list[Case] | None) -> None:
    if corpus is None:  # not inherited from a forking parent: load it here
        corpus, _ = load_corpus(config.corpus)
    try:
        Worker(config, worker, corpus, lambda kind, payload: q.put((kind, worker, payload))
               ).run(time.monotonic() + deadline_in)
    finally:
        q.put(("done", worker, None))


def save(report: Report, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{report.finding.oracle}-{report.index}"
    path = out / f"{stem}.s"
    path.write_text(report.text)
    report.program.name = stem
    report.program.save(out / f"{stem}.json")
    return str(path)


def campaign(config: Config, on_progress: Callable[[Stats, list[Report], float], None]
             | None = None) -> CampaignResult:
    """Run a campaign; ``on_progress(stats, reports, elapsed)`` is called as results arrive."""
    start = time.monotonic()
    corpus, skipped = load_corpus(config.corpus)
    total = Stats()
    by_sig: dict[str, Report] = {}  # the lowest case index wins: the same for any timing

    def take(kind: str, payload: Any) -> None:
        if kind == "stats":
            total.add(payload)
        elif kind == "finding":
            sig = payload.signature or payload.finding.signature()
            if sig in by_sig and by_sig[sig].index <= payload.index:
                return
            by_sig[sig] = payload
        if on_progress is not None:
            on_progress(total, sorted(by_sig.values(), key=lambda r: r.index),
                        time.monotonic() - start)

    def stop() -> bool:
        return bool(config.stop_after) and len(by_sig) >= config.stop_after

    forking = "fork" in mp.get_all_start_methods()
    if config.jobs <= 1 or (not forking and (config.verifier or config.confirm)):
        Worker(config, 0, corpus, take).run(start + config.seconds, stop)
    else:
        _run_parallel(config, take, stop, corpus)
    reports = sorted(by_sig.values(), key=lambda r: r.index)
    if config.out:
        for report in reports:
            report.path = save(report, Path(config.out))
    return CampaignResult(total, reports, time.monotonic() - start, skipped)


def _run_parallel(config: Config, take: Callable[[str, Any], None],
                  stop: Callable[[], bool], corpus: list[Case]) -> None:
    forking = "fork" in mp.get_all_start_methods()
    ctx = mp.get_context("fork") if forking else mp.get_context()
    q = ctx.Queue()
    inherited = corpus if forking else None
    procs = [ctx.Process(target=_process_main, args=(config, w, config.seconds, q, inherited),
                         daemon=True) for w in range(config.jobs)]
    for p in procs:
        p.start()
    alive = set(range(config.jobs))
    hard_stop = time.monotonic() + config.seconds + config.reduce_seconds + 30
    try:
        while alive and time.monotonic() < hard_stop and not stop():
            try:
                kind, worker, payload = q.get(timeout=0.25)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if kind == "done":
                alive.discard(worker)
            else:
                take(kind, payload)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)


def summary(result: CampaignResult) -> dict:
    s = result.stats
    return {
        "seconds": round(result.seconds, 2),
        "cases": s.cases,
        "cases_per_second": round(s.cases / result.seconds, 1) if result.seconds else 0,
        "wellformed": s.wellformed,
        "accepted": s.accepted,
        "acceptance_rate": round(s.accepted / s.wellformed, 3) if s.wellformed else 0,
        "interpreter_runs": s.runs,
        "jit_checked": s.jit,
        "findings": len(result.reports),
        "by_oracle": dict(s.by_oracle),
        "reproducers": [r.path or r.finding.signature() for r in result.reports],
        "corpus_skipped": len(result.skipped_corpus),
    }

