"""Scenario files: TOML describing a machine, workload phases, attached
programs, duration and seed, parsed and validated into plain dataclasses.

Every problem is reported as ``ScenarioError`` with the message
``file: key: message``, the key a dotted path such as
``phases[1].processes.size``.  Unknown keys are errors (a typo must not be
silently ignored).  Sizes are integers (bytes) or strings such as ``"2GiB"``
(:func:`bpfvm.limits.parse_size`, the parser every command uses).

What the simulator can hold is refused up front, with the limit named:
simulated memory past :data:`MAX_MACHINE_MEMORY` in all (it keeps about 25
bytes of host memory per 4 KiB frame), page-cache files past
:data:`MAX_FILE_TOTAL` in all, more than :data:`MAX_NODES` nodes,
rates and per-tick counts past :data:`MAX_PER_TICK`, NaN and infinities, a
file past :data:`~bpfvm.limits.MAX_TEXT_FILE`, text that is not UTF-8.  Two
``[[attach]]`` entries for one hook are an error (the second would replace
the first).

``[[attach]]`` entries name a policy hook (``zone_resize``; ``mm_zone_resize``
is accepted too), a program (a path relative to the scenario file, or the
name of a built-in program in ``programs/``) and optionally an engine
(``auto``, the default: the interpreter, then the JIT once the program has
run often; ``interp`` or ``jit`` force one).  An optional ``[baseline]`` table holds what the
built-in-policy side of a comparison changes: a whole ``machine`` table
and/or ``mm`` keys (e.g. a Linux-like machine without a movable zone).
Loading the programs is the runner's business (:mod:`mmcore.scenario.attach`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfvm.errors import BpfvmError
from bpfvm.limits import MAX_TEXT_FILE, format_size, read_bounded
from bpfvm.limits import parse_size as _parse_size
from mmcore.errors import ScenarioError
from mmcore.hooks.specs import POLICY_HOOKS, canonical
from mmcore.pagetables.tlb import TlbConfig
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.virt.process import HUGE_MODES

HOOK_NAMES = POLICY_HOOKS
ENGINES = ("auto", "interp", "jit")
MAX_MACHINE_MEMORY = 128 << 30  # simulated memory, all nodes together
MAX_NODES = 64
MAX_PER_TICK = 100_000  # any rate or count of events per tick
MAX_PROCESS_SIZE = 1 << 47  # a process's mapping: the x86-64 user address space
MAX_FILE_TOTAL = 256 << 30  # page-cache files of all phases together (4 bytes per page)


@dataclass(frozen=True)
class ProcessMix:
    arrival_rate: float = 0.0
    max_processes: int = 16
    lifetime: tuple[int, int] = (100, 400)
    size: tuple[int, int] = (32 << 20, 256 << 20)
    huge: tuple[tuple[str, float], ...] = (("thp", 1.0),)
    faults_per_tick: int = 64
    accesses_per_tick: int = 64
    munmap_share: float = 0.0  # chance per tick a process unmaps a quarter of its memory
    hot_share: float = 0.0  # share of processes whose memory is hot (VMA hint 1000)
    cold_access_divisor: int = 8  # cold processes make accesses_per_tick / this references
    home_nodes: tuple[int, ...] = ()  # nodes processes run on (empty: every node)
    touch_huge: bool = False  # a fault touches its whole page (else the next 4 KiB is touched)


@dataclass(frozen=True)
class KernelMix:
    slab_rate: float = 0.0
    slab_reclaimable_share: float = 0.5
    netbuf_rate: float = 0.0
    pagetable_rate: float = 0.0
    orders: tuple[int, int] = (0, 0)
    lifetime: tuple[int, int] = (10, 100)
    long_lived_share: float = 0.0
    long_lifetime: tuple[int, int] = (1000, 10000)


@dataclass(frozen=True)
class FileMix:
    files: int = 0
    file_size: int = 64 << 20
    reads_per_tick: int = 0


@dataclass(frozen=True)
class Phase:
    name: str
    start: int
    end: int
    processes: ProcessMix = field(default_factory=ProcessMix)
    kernel: KernelMix = field(default_factory=KernelMix)
    file: FileMix = field(default_factory=FileMix)


@dataclass(frozen=True)
class Attach:
    hook: str  # as written in the file (canonical(hook) is the hook's record name)
    program: str
    engine: str | None = None  # None: the runner's default engine

    def as_dict(self) -> dict[str, str]:
        d = {"hook": self.hook, "program": self.program}
        if self.engine is not None:
            d["engine"] = self.engine
        return d


@dataclass(frozen=True)
class Scenario:
    name: str
    file: str
    seed: int
    duration: int
    sample_every: int
    machine: MachineSpec
    tlb: TlbConfig
    compaction_proactiveness: int
    kcompactd_interval: int
    swappiness: int
    evacuate_interval: int
    phases: tuple[Phase, ...]
    attach: tuple[Attach, ...]
    baseline: Scenario | None = None  # the built-in side of a comparison, if it differs


class _Reader:
    """Typed access to one TOML table, reporting errors with their key path."""

    def __init__(self, file: str, path: str, table: Any) -> None:
        self.file, self.path = file, path
        if not isinstance(table, dict):
            self.fail("", "must be a table")
        self.table: dict[str, Any] = table
        self.used: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path else k

    def fail(self, k: str, msg: str) -> None:
        raise ScenarioError(self.file, self.key(k) if k else self.path or "(top)", msg)

    def get(
        self, k: str, conv: Callable[[Any], Any], default: Any = None, required: bool = False
    ) -> Any:
        self.used.add(k)
        if k not in self.table:
            if required:
                self.fail(k, "missing")
            return default
        try:
            return conv(self.table[k])
        except (TypeError, ValueError) as exc:
            self.fail(k, str(exc))

    def sub(self, k: str) -> _Reader:
        self.used.add(k)
        return _Reader(self.file, self.key(k), self.table.get(k, {}))

    def done(self) -> None:
        extra = sorted(set(self.table) - self.used)
        if extra:
            self.fail(extra[0], "unknown key")


def parse_size(v: Any) -> int:
    """Bytes from an integer or a string such as ``"2GiB"`` (see
    :func:`bpfvm.limits.parse_size`)."""
    return _parse_size(v)


def _size(hi: int, what: str = "") -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        n = parse_size(v)
        if n > hi:
            raise ValueError(f"{_shown(n)} is more than the limit of {format_size(hi)}{what}")
        return n

    return conv


def _shown(n: int) -> str:
    return format_size(n) if n.bit_length() <= 64 else "a size of more than 64 bits"


def _int(lo: int = 0, hi: int | None = None) -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"expected an integer, got {v!r}")
        if v < lo or (hi is not None and v > hi):
            shown = v if v.bit_length() <= 64 else "a number of more than 64 bits"
            raise ValueError(f"must be in [{lo}, {hi if hi is not None else 'inf'}], "
                             f"got {shown}")
        return v

    return conv


def _float(lo: float = 0.0, hi: float | None = None) -> Callable[[Any], float]:
    def conv(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"expected a number, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"expected a finite number, got {v}")
        if v < lo or (hi is not None and v > hi):
            raise ValueError(f"must be in [{lo}, {hi if hi is not None else 'inf'}], got {v}")
        return float(v)

    return conv


def _pair(conv: Callable[[Any], int]) -> Callable[[Any], tuple[int, int]]:
    def pair(v: Any) -> tuple[int, int]:
        if not isinstance(v, list) or len(v) != 2:
            raise TypeError(f"expected [low, high], got {v!r}")
        lo, hi = conv(v[0]), conv(v[1])
        if lo > hi:
            raise ValueError(f"low {v[0]!r} exceeds high {v[1]!r}")
        return lo, hi

    return pair


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {v!r}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"expected true or false, got {v!r}")
    return v


def _nodes(v: Any) -> tuple[int, ...]:
    if not isinstance(v, list) or not v:
        raise TypeError(f"expected a non-empty array of node ids, got {v!r}")
    return tuple(_int(0, 63)(x) for x in v)


def _mix(v: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(v, dict) or not v:
        raise TypeError(f"expected a table of {'/'.join(HUGE_MODES)} weights")
    for k, w in v.items():
        if k not in HUGE_MODES:
            raise ValueError(f"unknown page-size mode {k!r} (one of {', '.join(HUGE_MODES)})")
        _float()(w)
    if sum(v.values()) <= 0:
        raise ValueError("weights must not all be zero")
    return tuple((k, float(w)) for k, w in v.items())


def _machine(r: _Reader) -> MachineSpec:
    nodes_raw = r.get("nodes", lambda v: v, required=True)
    if not isinstance(nodes_raw, list) or not nodes_raw:
        r.fail("nodes", "expected a non-empty array of node tables")
    if len(nodes_raw) > MAX_NODES:
        r.fail("nodes", f"{len(nodes_raw)} nodes, more than the limit of {MAX_NODES}")
    nodes = []
    total = 0
    for i, raw in enumerate(nodes_raw):
        n = _Reader(r.file, r.key(f"nodes[{i}]"), raw)
        mem = n.get("memory", _size(MAX_MACHINE_MEMORY, " of simulated memory (all nodes)"),
                    required=True)
        total += mem
        if total > MAX_MACHINE_MEMORY:
            n.fail("memory", f"the machine's memory comes to {_shown(total)}, more than the "
                   f"simulator's limit of {format_size(MAX_MACHINE_MEMORY)} (all nodes)")
        mov = n.get("movable", _size(MAX_MACHINE_MEMORY), 0)
        tier = n.get("tier", str, "dram")
        n.done()
        if mem % (2 << 20) or mov % (2 << 20) or mem == 0:
            n.fail("memory", "node memory and movable size must be positive multiples of 2MiB")
        if mov >= mem:
            n.fail("movable", "movable zone must be smaller than the node")
        nodes.append(NodeSpec(mem >> 12, mov >> 12, tier))
    dist = r.get("distance", lambda v: tuple(tuple(_int(1)(x) for x in row) for row in v), ())
    if dist and (len(dist) != len(nodes) or any(len(row) != len(nodes) for row in dist)):
        r.fail("distance", f"expected a {len(nodes)}x{len(nodes)} table")
    wsf = r.get("watermark_scale_factor", _int(1, 3000), 10)
    r.done()
    return MachineSpec(tuple(nodes), dist, wsf)


def _phase(file: str, i: int, raw: Any, duration: int) -> Phase:
    r = _Reader(file, f"phases[{i}]", raw)
    name = r.get("name", str, f"phase{i}")
    start = r.get("start", _int(), 0)
    end = r.get("end", _int(), duration)
    if end < start:
        r.fail("end", "phase ends before it starts")
    p = r.sub("processes")
    procs = ProcessMix(
        p.get("arrival_rate", _float(0.0, MAX_PER_TICK), 0.0),
        p.get("max_processes", _int(0), 16),
        p.get("lifetime", _pair(_int(1)), (100, 400)),
        p.get("size", _pair(_size(MAX_PROCESS_SIZE)), (32 << 20, 256 << 20)),
        p.get("huge", _mix, (("thp", 1.0),)),
        p.get("faults_per_tick", _int(0, MAX_PER_TICK), 64),
        p.get("accesses_per_tick", _int(0, MAX_PER_TICK), 64),
        p.get("munmap_share", _float(0.0, 1.0), 0.0),
        p.get("hot_share", _float(0.0, 1.0), 0.0),
        p.get("cold_access_divisor", _int(1), 8),
        p.get("home_nodes", _nodes, ()),
        p.get("touch_huge", _bool, False),
    )
    p.done()
    k = r.sub("kernel")
    kern = KernelMix(
        k.get("slab_rate", _float(0.0, MAX_PER_TICK), 0.0),
        k.get("slab_reclaimable_share", _float(0.0, 1.0), 0.5),
        k.get("netbuf_rate", _float(0.0, MAX_PER_TICK), 0.0),
        k.get("pagetable_rate", _float(0.0, MAX_PER_TICK), 0.0),
        k.get("orders", _pair(_int(0, 10)), (0, 0)),
        k.get("lifetime", _pair(_int(1)), (10, 100)),
        k.get("long_lived_share", _float(0.0, 1.0), 0.0),
        k.get("long_lifetime", _pair(_int(1)), (1000, 10000)),
    )
    k.done()
    f = r.sub("file")
    files = FileMix(
        f.get("files", _int(0, 1024), 0),
        f.get("file_size", _size(MAX_FILE_TOTAL), 64 << 20),
        f.get("reads_per_tick", _int(0, MAX_PER_TICK), 0),
    )
    f.done()
    r.done()
    return Phase(name, start, end, procs, kern, files)


def parse_scenario(data: dict[str, Any], file: str = "<scenario>", _root: str = "") -> Scenario:
    r = _Reader(file, _root, data)
    name = r.get("name", str, Path(file).stem)
    seed = r.get("seed", _int(), 1)
    duration = r.get("duration", _int(1), required=True)
    sample_every = r.get("sample_every", _int(1), max(1, duration // 20))
    machine = _machine(r.sub("machine"))
    m = r.sub("mm")
    t = m.sub("tlb")
    tlb = TlbConfig(
        t.get("entries_4k", _int(1), 1536), t.get("entries_2m", _int(1), 1536),
        t.get("entries_1g", _int(1), 16), t.get("pwc_pml4", _int(0), 4),
        t.get("pwc_pdpt", _int(0), 8), t.get("pwc_pd", _int(0), 32),
    )  # fmt: skip
    t.done()
    proactiveness = m.get("compaction_proactiveness", _int(0, 100), 20)
    kcompactd = m.get("kcompactd_interval", _int(1), 50)
    swappiness = m.get("swappiness", _int(0, 200), 60)
    evacuate = m.get("evacuate_interval", _int(0), 0)
    m.done()
    raw_phases = r.get("phases", lambda v: v, [])
    if not isinstance(raw_phases, list):
        r.fail("phases", "expected an array of tables ([[phases]])")
    phases = tuple(_phase(file, i, p, duration) for i, p in enumerate(raw_phases))
    file_total = 0
    for i, ph in enumerate(phases):
        file_total += ph.file.files * ph.file.file_size
        if file_total > MAX_FILE_TOTAL:
            r.fail(f"phases[{i}].file.file_size", f"files come to {_shown(file_total)} "
                   f"(files x file_size, all phases), more than the limit of "
                   f"{format_size(MAX_FILE_TOTAL)}")
        if any(n >= len(machine.nodes) for n in ph.processes.home_nodes):
            r.fail(f"phases[{i}].processes.home_nodes", f"the machine has "
                   f"{len(machine.nodes)} nodes")
    raw_attach = r.get("attach", lambda v: v, [])
    if not isinstance(raw_attach, list):
        r.fail("attach", "expected an array of tables ([[attach]])")
    attach = []
    first: dict[str, int] = {}
    for i, raw in enumerate(raw_attach):
        a = _Reader(file, f"attach[{i}]", raw)
        hook = a.get("hook", _str, required=True)
        if canonical(hook) not in HOOK_NAMES:
            a.fail("hook", f"unknown hook {hook!r} (one of {', '.join(HOOK_NAMES)})")
        if canonical(hook) in first:
            a.fail("hook", f"a second program for hook {canonical(hook)!r} (attach"
                   f"[{first[canonical(hook)]}] already attaches one; a hook runs one program)")
        first[str(canonical(hook))] = i
        program = a.get("program", _str, required=True)
        engine = a.get("engine", _str, None)
        if engine is not None and engine not in ENGINES:
            a.fail("engine", f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
        attach.append(Attach(hook, program, engine))
        a.done()
    baseline = None
    if "baseline" in data:
        baseline = _baseline(r.sub("baseline"), data, file)
    r.done()
    return Scenario(
        name, file, seed, duration, sample_every, machine, tlb, proactiveness, kcompactd,
        swappiness, evacuate, phases, tuple(attach), baseline,
    )  # fmt: skip


def _baseline(b: _Reader, data: dict[str, Any], file: str) -> Scenario:
    """The scenario with the ``[baseline]`` changes applied and nothing attached."""
    merged = {k: v for k, v in data.items() if k not in ("baseline", "attach")}
    machine = b.get("machine", lambda v: v, None)
    if machine is not None:
        merged["machine"] = machine
    mm = b.get("mm", lambda v: v, None)
    if mm is not None:
        if not isinstance(mm, dict):
            b.fail("mm", "must be a table")
        merged["mm"] = {**data.get("mm", {}), **mm}
    b.done()
    return parse_scenario(merged, file, "baseline")


def load_scenario(path: str | Path) -> Scenario:
    """Read, parse and validate a scenario file (at most
    :data:`~bpfvm.limits.MAX_TEXT_FILE` bytes of UTF-8 TOML)."""
    p = Path(path)
    try:
        raw = read_bounded(p, MAX_TEXT_FILE, "scenario")
    except BpfvmError as exc:
        message = str(exc).removeprefix(f"{p}: ")
        raise ScenarioError(str(p), "(file)", message) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(p), "(file)", f"not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(p), "(toml)", str(exc)) from None
    except ValueError:  # an integer past Python's digit limit
        raise ScenarioError(str(p), "(toml)", "a number has too many digits") from None
    return parse_scenario(data, str(p))
