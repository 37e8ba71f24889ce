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
from mmcore.phys.slab import CACHE_NAMES
from mmcore.virt.process import HUGE_MODES, THP_DEFRAG, THP_ENABLED
from mmcore.virt.reclaim import SCAN_BALANCES

# the slab caches of kernel objects when a phase names none
DEFAULT_CACHE_MIX: tuple[tuple[str, float], ...] = (
    ("dentry", 4.0), ("inode_cache", 1.0), ("radix_tree_node", 1.0), ("kmalloc-64", 2.0),
    ("kmalloc-128", 1.0), ("kmalloc-256", 1.0), ("kmalloc-512", 1.0), ("kmalloc-1k", 0.5),
    ("kmalloc-4k", 0.5),
)

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
    madvise: bool = False  # the mapping is madvise(MADV_HUGEPAGE)d


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
    object_rate: float = 0.0  # slab objects per tick, through the slab caches
    caches: tuple[tuple[str, float], ...] = DEFAULT_CACHE_MIX
    object_lifetime: tuple[int, int] = (5, 5000)  # Pareto scale, cap
    object_lifetime_alpha: float = 1.2


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
    mm_options: tuple[tuple[str, Any], ...] = ()  # further MMConfig fields, by name
    hugetlb_resize: tuple[tuple[int, int], ...] = ()  # (tick, nr_hugepages) writes
    scan_balance: str = "cost"  # anon/file split: "cost" (get_scan_count) or "fixed"
    check_interval: int = 64  # ticks between full invariant checks under --check

_RECORD: list[tuple[str, str, Any, Any, bool]] | None = None  # keys read (schema_keys)


def _doc(conv: Callable[[Any], Any], what: str,
         show: Callable[[Any], str] | None = None) -> Callable[[Any], Any]:
    """``conv`` described for the schema documentation: ``what`` it accepts
    and how to ``show`` a default value in TOML."""
    conv.what = what  # type: ignore[attr-defined]
    if show is not None:
        conv.show = show  # type: ignore[attr-defined]
    return conv


def _described(what: str, show: Callable[[Any], str] | None = None) -> Callable:
    return lambda conv: _doc(conv, what, show)


def _range(lo: float, hi: float | None) -> str:
    if hi is None:
        return f">= {lo}"
    return f"in [{lo}, {hi}]"



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
        if _RECORD is not None:
            _RECORD.append((self.path, k, conv, default, required))
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

    return _doc(conv, f"size, at most {format_size(hi)}", format_size)


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

    return _doc(conv, "integer " + _range(lo, hi))


def _float(lo: float = 0.0, hi: float | None = None) -> Callable[[Any], float]:
    def conv(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"expected a number, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"expected a finite number, got {v}")
        if v < lo or (hi is not None and v > hi):
            raise ValueError(f"must be in [{lo}, {hi if hi is not None else 'inf'}], got {v}")
        return float(v)

    return _doc(conv, "number " + _range(lo, hi))


def _pair(conv: Callable[[Any], int]) -> Callable[[Any], tuple[int, int]]:
    def pair(v: Any) -> tuple[int, int]:
        if not isinstance(v, list) or len(v) != 2:
            raise TypeError(f"expected [low, high], got {v!r}")
        lo, hi = conv(v[0]), conv(v[1])
        if lo > hi:
            raise ValueError(f"low {v[0]!r} exceeds high {v[1]!r}")
        return lo, hi

    show = getattr(conv, "show", repr)
    return _doc(pair, f"[low, high], each {conv.what}",  # type: ignore[attr-defined]
                lambda v: f"[{show(v[0])}, {show(v[1])}]")


@_described("string")
def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {v!r}")
    return v


@_described("boolean", lambda v: "true" if v else "false")
def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"expected true or false, got {v!r}")
    return v


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if v not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {v!r}")
        return str(v)

    return _doc(conv, "one of " + ", ".join(options))


@_described("array of [tick, pages] pairs (integers >= 0)", lambda v: repr([list(x) for x in v]))
def _schedule(v: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(v, list):
        raise TypeError(f"expected an array of [tick, pages] pairs, got {v!r}")
    out = []
    for x in v:
        if not isinstance(x, list) or len(x) != 2:
            raise TypeError(f"expected [tick, pages], got {x!r}")
        out.append((_int(0)(x[0]), _int(0, 1 << 20)(x[1])))
    return tuple(out)


@_described("string")
def _any_str(v: Any) -> str:
    return str(v)


def _raw(what: str) -> Callable[[Any], Any]:
    """The value as it is (checked by the caller), described as ``what``."""
    return _doc(lambda v: v, what)


@_described("array of node ids (integers from 0)", lambda v: repr(list(v)))
def _nodes(v: Any) -> tuple[int, ...]:
    if not isinstance(v, list) or not v:
        raise TypeError(f"expected a non-empty array of node ids, got {v!r}")
    return tuple(_int(0, 63)(x) for x in v)


@_described(f"table of weights by page-size mode ({', '.join(HUGE_MODES)}), numbers >= 0",
            lambda v: "{ " + ", ".join(f"{k} = {w:g}" for k, w in v) + " }")
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


@_described("table of slab cache name -> weight (" + ", ".join(CACHE_NAMES) + ")",
           lambda v: "{ " + ", ".join(f'"{k}" = {w:g}' for k, w in v) + " }")
def _cache_mix(v: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(v, dict) or not v:
        raise TypeError("expected a table of slab cache weights")
    for k, w in v.items():
        if k not in CACHE_NAMES:
            raise ValueError(f"unknown slab cache {k!r} (one of {', '.join(CACHE_NAMES)})")
        _float()(w)
    if sum(v.values()) <= 0:
        raise ValueError("weights must not all be zero")
    return tuple((k, float(w)) for k, w in v.items())


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if v not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {v!r}")
        return str(v)
    return _doc(conv, "one of " + ", ".join(f'"{o}"' for o in options), lambda v: f'"{v}"')


@_described("square array of arrays of integers >= 1 (one row per node)")
def _distance(v: Any) -> tuple[tuple[int, ...], ...]:
    if not isinstance(v, list) or not all(isinstance(row, list) for row in v):
        raise TypeError(f"expected an array of arrays of integers, got {v!r}")
    return tuple(tuple(_int(1)(x) for x in row) for row in v)


@_described("path of a snapshot (.npz from bpfvm mm snapshot), relative to the scenario "
           "file; replaces nodes")
def _snapshot_path(v: Any) -> str:
    return _any_str(v)


def _snapshot_node(r: _Reader, name: str) -> tuple[str, NodeSpec]:
    """The snapshot file ``name`` (relative to the scenario file) and the one
    node of as many frames (whole pageblocks) that it seeds."""
    from mmcore.phys.snapshot import SnapshotError, load

    path = Path(name)
    if not path.is_absolute() and r.file and not r.file.startswith("<"):
        path = Path(r.file).resolve().parent / path
    try:
        frames = len(load(path).flags) & -512
    except SnapshotError as exc:
        r.fail("snapshot", str(exc))
    if not frames:
        r.fail("snapshot", f"{path}: fewer frames than one 2MiB pageblock")
    if frames << 12 > MAX_MACHINE_MEMORY:
        r.fail("snapshot", f"{path}: {_shown(frames << 12)} of memory, more than the "
               f"simulator's limit of {format_size(MAX_MACHINE_MEMORY)}")
    return str(path), NodeSpec(frames)


def _machine(r: _Reader) -> MachineSpec:
    snap = r.get("snapshot", _snapshot_path, "")
    if snap:
        if "nodes" in r.table:
            r.fail("nodes", "give nodes or snapshot, not both (a snapshot makes one node)")
        path, node = _snapshot_node(r, snap)
        wsf = r.get("watermark_scale_factor", _int(1, 3000), 10)
        r.done()
        return MachineSpec((node,), (), wsf, snapshot=path)
    nodes_raw = r.get("nodes", _raw("array of node tables"), required=True)
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
        tier = n.get("tier", _any_str, "dram")
        n.done()
        if mem % (2 << 20) or mov % (2 << 20) or mem == 0:
            n.fail("memory", "node memory and movable size must be positive multiples of 2MiB")
        if mov >= mem:
            n.fail("movable", "movable zone must be smaller than the node")
        nodes.append(NodeSpec(mem >> 12, mov >> 12, tier))
    dist = r.get("distance", _distance, ())
    if dist and (len(dist) != len(nodes) or any(len(row) != len(nodes) for row in dist)):
        r.fail("distance", f"expected a {len(nodes)}x{len(nodes)} table")
    wsf = r.get("watermark_scale_factor", _int(1, 3000), 10)
    r.done()
    return MachineSpec(tuple(nodes), dist, wsf)


def _phase(file: str, i: int, raw: Any, duration: int) -> Phase:
    r = _Reader(file, f"phases[{i}]", raw)
    name = r.get("name", _any_str, f"phase{i}")
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
        p.get("madvise", _bool, False),
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
        k.get("object_rate", _float(0.0, MAX_PER_TICK), 0.0),
        k.get("caches", _cache_mix, DEFAULT_CACHE_MIX),
        k.get("object_lifetime", _pair(_int(1)), (5, 5000)),
        k.get("object_lifetime_alpha", _float(0.1, 10.0), 1.2),
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
    name = r.get("name", _any_str, Path(file).stem)
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
    th = m.sub("thp")
    thp = (("thp_enabled", th.get("enabled", _choice(THP_ENABLED), "always")),
           ("thp_defrag", th.get("defrag", _choice(THP_DEFRAG), "madvise")))
    th.done()
    h = m.sub("hugetlb")
    gib = sum(n.pages for n in machine.nodes) >> 18
    hugetlb = (("hugetlb_boot", h.get("pages", _int(0, 1 << 20), 0)),
               ("hugetlb_overcommit", h.get("overcommit", _int(0, 1 << 20), 0)),
               ("hugetlb_movable", h.get("movable", _bool, False)))
    if hugetlb[0][1] > gib:
        h.fail("pages", f"{hugetlb[0][1]} pages of 1 GiB, the machine has {gib} GiB")
    resize = h.get("resize", _schedule, ())
    h.done()
    kh = m.sub("khugepaged")
    khugepaged = (
        ("khugepaged_pages_to_scan", kh.get("pages_to_scan", _int(1, 1 << 30), 4096)),
        ("khugepaged_scan_sleep_millisecs", kh.get("scan_sleep_millisecs", _int(1), 10_000)),
        ("khugepaged_max_ptes_none", kh.get("max_ptes_none", _int(0, 511), 511)),
    )
    kh.done()
    mm_options = (
        ("tick_millisecs", m.get("tick_millisecs", _int(1, 1_000_000), 10)),
        ("extfrag_threshold", m.get("extfrag_threshold", _int(0, 1000), 500)),
        ("pin_rate", m.get("pin_rate", _float(0.0, 1.0), 0.0)),
        ("pin_seed", seed),
    ) + thp + hugetlb + khugepaged
    balance = m.get("scan_balance", _choice(SCAN_BALANCES), "cost")
    check_interval = m.get("check_interval", _int(1), 64)
    m.done()
    raw_phases = r.get("phases", _raw("array of tables"), [])
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
    raw_attach = r.get("attach", _raw("array of tables"), [])
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
        global _RECORD
        recording, _RECORD = _RECORD, None  # the baseline side re-reads the same keys
        try:
            baseline = _baseline(r.sub("baseline"), data, file, recording)
        finally:
            _RECORD = recording
    r.done()
    return Scenario(
        name, file, seed, duration, sample_every, machine, tlb, proactiveness, kcompactd,
        swappiness, evacuate, phases, tuple(attach), baseline, mm_options, resize, balance,
        check_interval,
    )  # fmt: skip


def _baseline(b: _Reader, data: dict[str, Any], file: str,
              recording: list | None = None) -> Scenario:
    """The scenario with the ``[baseline]`` changes applied and nothing attached."""
    merged = {k: v for k, v in data.items() if k not in ("baseline", "attach")}
    if recording is not None:
        recording.append((b.path, "machine", _raw("table"), None, False))
        recording.append((b.path, "mm", _raw("table"), None, False))
    machine = b.get("machine", _raw("table"), None)
    if machine is not None:
        merged["machine"] = machine
    mm = b.get("mm", _raw("table"), None)
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


# ---- documentation: generated from the keys the parser reads ---------------------------
# What each key means and its unit; a default the parser computes is described
# in words.  The keys, types, limits and defaults come from the parser itself
# (schema_keys): a key the parser reads without an entry here fails the tests.
KEY_DOCS: dict[str, tuple[str, str] | tuple[str, str, str]] = {
    "name": ("-", "name shown in reports", "the file name without .toml"),
    "seed": ("-", "seed of the one random generator: a scenario and seed give identical "
             "results"),
    "duration": ("ticks", "length of the run"),
    "sample_every": ("ticks", "interval of the time series", "duration / 20, at least 1"),
    "machine": ("-", "the simulated machine"),
    "machine.snapshot": ("-", "start from a recorded machine: one node of the snapshot's "
                         "frames, each holding its recorded class (free, kernel, page "
                         "cache); instead of nodes"),
    "machine.nodes": ("-", "the NUMA nodes, in node-id order"),
    "machine.nodes[].memory": ("bytes", "memory of the node, a positive multiple of 2MiB"),
    "machine.nodes[].movable": ("bytes", "the top of the node given to its MOVABLE zone "
                                "(multiple of 2MiB, less than memory)"),
    "machine.nodes[].tier": ("-", "free-form label of the memory tier (dram, cxl, ...)"),
    "machine.distance": ("-", "node distance table, as the SLIT (local 10)",
                         "10 on the diagonal, 20 elsewhere"),
    "machine.watermark_scale_factor": ("1/10000", "gap between the min, low and high "
                                       "watermarks, as vm.watermark_scale_factor"),
    "mm": ("-", "memory-manager settings"),
    "mm.tlb": ("-", "the TLB and page-walk caches"),
    "mm.tlb.entries_4k": ("entries", "TLB entries for 4 KiB pages"),
    "mm.tlb.entries_2m": ("entries", "TLB entries for 2 MiB pages"),
    "mm.tlb.entries_1g": ("entries", "TLB entries for 1 GiB pages"),
    "mm.tlb.pwc_pml4": ("entries", "page-walk cache entries for PML4 entries"),
    "mm.tlb.pwc_pdpt": ("entries", "page-walk cache entries for PDPT entries"),
    "mm.tlb.pwc_pd": ("entries", "page-walk cache entries for page-directory entries"),
    "mm.compaction_proactiveness": ("percent", "as vm.compaction_proactiveness"),
    "mm.kcompactd_interval": ("ticks", "kcompactd's timeout: how often it checks the "
                              "fragmentation score for proactive compaction when not woken "
                              "(Linux: 500 ms)"),
    "mm.extfrag_threshold": ("1/1000", "as vm.extfrag_threshold: compaction_suitable refuses "
                             "a costly order whose fragmentation index is at most this "
                             "(the failure is lack of memory, not fragmentation)"),
    "mm.pin_rate": ("share", "anonymous pages long-term pinned at fault (as RDMA/VFIO "
                    "pins): movable but not migratable while pinned"),
    "mm.thp": ("-", "transparent huge pages (/sys/kernel/mm/transparent_hugepage)"),
    "mm.thp.enabled": ("-", "where THP faults may happen: always (every thp VMA), madvise "
                       "(madvised VMAs only), never"),
    "mm.thp.defrag": ("-", "what a THP fault does when no 2 MiB block is free: always "
                      "(direct reclaim and compaction), defer (wake kswapd/kcompactd, fall "
                      "back to 4 KiB), defer+madvise, madvise (direct for madvised VMAs, "
                      "else nothing), never"),
    "mm.hugetlb": ("-", "the hugetlb pool of 1 GiB pages that 1g mappings fault from"),
    "mm.hugetlb.pages": ("pages", "1 GiB pages reserved at boot, before the workload "
                         "(hugepagesz=1G hugepages=N), spread over the nodes"),
    "mm.hugetlb.overcommit": ("pages", "as nr_overcommit_hugepages: surplus pages a fault "
                              "may allocate (alloc_contig_range) when the pool is empty"),
    "mm.hugetlb.movable": ("-", "pool pages may come from ZONE_MOVABLE (not Linux, which "
                           "keeps gigantic pages out of it; the Contiguitas design needs it)"),
    "mm.hugetlb.resize": ("-", "writes of nr_hugepages at run time, [tick, pages] each: "
                          "growth migrates movable pages out of 1 GiB ranges"),
    "mm.khugepaged": ("-", "khugepaged (/sys/kernel/mm/transparent_hugepage/khugepaged)"),
    "mm.khugepaged.pages_to_scan": ("pages", "PTEs scanned per pass (each 2 MiB range "
                                    "counts 512)"),
    "mm.khugepaged.scan_sleep_millisecs": ("ms", "simulated time between passes (see "
                                           "mm.tick_millisecs)"),
    "mm.khugepaged.max_ptes_none": ("PTEs", "a 2 MiB range is collapsed into a THP when at "
                                    "most this many of its 512 PTEs are empty"),
    "mm.tick_millisecs": ("ms", "simulated time of one tick (khugepaged's scan sleep; the "
                          "kcompactd_interval default 50 is Linux's 500 ms)"),
    "mm.swappiness": ("-", "as vm.swappiness: the built-in reclaim split"),
    "mm.scan_balance": ("-", "the built-in anon/file split: cost (get_scan_count: "
                        "cache_trim_mode, then cost-proportional with swappiness; "
                        "workingset refaults) or fixed (swappiness / 200 of a pass from "
                        "anon, the split before get_scan_count was modelled)"),
    "mm.check_interval": ("ticks", "with --check, a full invariant check every this many "
                          "ticks (and after the last); the ticks between check what they "
                          "touched"),
    "mm.evacuate_interval": ("ticks", "interval of a full evacuation of each node's normal "
                             "zone (0: never)"),
    "phases": ("-", "workload phases ([[phases]]), which may overlap"),
    "phases[].name": ("-", "name of the phase", "phaseN (N its index)"),
    "phases[].start": ("ticks", "first tick of the phase"),
    "phases[].end": ("ticks", "tick the phase ends at (exclusive)", "duration"),
    "phases[].processes": ("-", "user processes"),
    "phases[].processes.arrival_rate": ("per tick", "new processes (fractions are a chance)"),
    "phases[].processes.max_processes": ("processes", "at most this many alive at once"),
    "phases[].processes.lifetime": ("ticks", "lifetime, drawn uniformly"),
    "phases[].processes.size": ("bytes", "size of the one mapping, drawn uniformly"),
    "phases[].processes.huge": ("weights", "page-size mode of the mapping: none (4 KiB), "
                                "thp (2 MiB when possible), 1g"),
    "phases[].processes.faults_per_tick": ("per tick", "pages each process touches for "
                                           "the first time"),
    "phases[].processes.accesses_per_tick": ("per tick", "random references each process "
                                             "makes to its memory (TLB, walks, distance)"),
    "phases[].processes.munmap_share": ("chance per tick", "a fully touched process unmaps "
                                        "a quarter of its memory"),
    "phases[].processes.hot_share": ("share", "processes whose memory is hot (placement "
                                     "hint 1000); the rest are cold"),
    "phases[].processes.cold_access_divisor": ("-", "cold processes make accesses_per_tick "
                                               "/ this references"),
    "phases[].processes.home_nodes": ("-", "nodes processes run on", "every node"),
    "phases[].processes.touch_huge": ("-", "a fault touches the whole page it mapped "
                                      "(else the next 4 KiB)"),
    "phases[].processes.madvise": ("-", "the mapping is madvise(MADV_HUGEPAGE)d (see "
                                   "mm.thp)"),
    "phases[].kernel": ("-", "kernel allocations"),
    "phases[].kernel.slab_rate": ("per tick", "slab allocations"),
    "phases[].kernel.slab_reclaimable_share": ("share", "of slab allocations that are "
                                               "reclaimable"),
    "phases[].kernel.netbuf_rate": ("per tick", "network-buffer allocations"),
    "phases[].kernel.pagetable_rate": ("per tick", "page-table-like unmovable allocations"),
    "phases[].kernel.orders": ("order", "allocation order (0: 4 KiB, 9: 2 MiB), drawn "
                               "uniformly"),
    "phases[].kernel.lifetime": ("ticks", "lifetime of an allocation, drawn uniformly"),
    "phases[].kernel.long_lived_share": ("share", "of allocations that are long-lived"),
    "phases[].kernel.long_lifetime": ("ticks", "lifetime of a long-lived allocation"),
    "phases[].kernel.object_rate": ("per tick", "slab objects allocated through the slab "
                                    "caches (kmem_cache_alloc)"),
    "phases[].kernel.caches": ("weights", "slab cache of each object"),
    "phases[].kernel.object_lifetime": ("ticks", "an object's lifetime: Pareto with this "
                                        "scale (minimum), capped at the second value"),
    "phases[].kernel.object_lifetime_alpha": ("-", "Pareto shape of object lifetimes "
                                              "(smaller: a longer tail)"),
    "phases[].file": ("-", "page-cache files"),
    "phases[].file.files": ("files", "files created when the phase starts, deleted when it "
                            "ends"),
    "phases[].file.file_size": ("bytes", "size of each file"),
    "phases[].file.reads_per_tick": ("per tick", "page reads, skewed towards low offsets"),
    "attach": ("-", "policy programs to attach ([[attach]]), one per hook"),
    "attach[].hook": ("-", "policy hook (" + ", ".join(HOOK_NAMES) + "; an mm_ prefix is "
                      "accepted)"),
    "attach[].program": ("-", "program file (.s, .bin, .json, .o, .c), relative to the "
                         "scenario, or a built-in program's file name"),
    "attach[].engine": ("-", "engine: " + " or ".join(ENGINES),
                        "the command's --engine, else auto (the interpreter, then the JIT)"),
    "baseline": ("-", "what the built-in side of bpfvm mm compare changes"),
    "baseline.machine": ("-", "a whole [machine] table for the built-in side",
                         "the scenario's machine"),
    "baseline.mm": ("-", "[mm] keys for the built-in side, over the scenario's",
                    "the scenario's mm"),
}

_TABLES = {  # tables the parser opens with sub() or reads as arrays: key -> type
    "machine": "table", "mm": "table", "mm.tlb": "table", "mm.thp": "table",
    "mm.hugetlb": "table", "mm.khugepaged": "table", "phases[].processes": "table",
    "phases[].kernel": "table", "phases[].file": "table", "baseline": "table",
}
_REQUIRED_TABLES = ("machine",)
_SAMPLE = {  # a document that reaches every key the parser reads
    "duration": 1, "machine": {"nodes": [{"memory": 2 << 20}]}, "phases": [{}],
    "attach": [{"hook": HOOK_NAMES[0], "program": "x.s"}], "baseline": {},
}


@dataclass(frozen=True)
class KeyDoc:
    key: str  # dotted, [] for an array's entries: phases[].processes.size
    type: str
    unit: str
    default: str  # "required", or the default as TOML, or in words
    meaning: str


def _generic(path: str) -> str:
    import re

    return re.sub(r"\[\d+\]", "[]", path)


def schema_keys() -> list[KeyDoc]:
    """Every key the parser reads, in the order it reads them, with its type
    and default from the parser and its meaning and unit from KEY_DOCS."""
    global _RECORD
    _RECORD = recorded = []
    try:
        parse_scenario(_SAMPLE, "<schema>")
    finally:
        _RECORD = None
    seen: dict[str, KeyDoc] = {}
    for path, k, conv, default, required in recorded:
        key = _generic(f"{path}.{k}" if path else k)
        for parent in _parents(key):
            if parent not in seen and parent in _TABLES:
                seen[parent] = _keydoc(parent, _TABLES[parent], "",
                                       parent in _REQUIRED_TABLES)
        if key in seen:
            continue
        what = getattr(conv, "what", "string" if conv is str else "?")
        shown = _show_default(conv, default) if default is not None else None
        seen[key] = _keydoc(key, what, shown, required)
    return list(seen.values())


def _parents(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _keydoc(key: str, what: str, default: str | None, required: bool) -> KeyDoc:
    doc = KEY_DOCS.get(key)
    if doc is None:
        raise KeyError(f"scenario key {key!r} has no entry in KEY_DOCS")
    unit, meaning = doc[0], doc[1]
    if required:
        shown = "required"
    elif len(doc) > 2:
        shown = doc[2]  # type: ignore[misc]
    elif default is not None:
        shown = default
    else:
        shown = "none"
    return KeyDoc(key, what, unit, shown, meaning)


def _show_default(conv: Any, value: Any) -> str:
    show = getattr(conv, "show", None)
    if value == 0 and not isinstance(value, bool):
        return "0"
    if show is not None:
        return show(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show_default(None, v) for v in value) + "]"
    return repr(value)


def schema_markdown() -> str:
    """The scenario format as Markdown (docs/scenario-schema.md is this text)."""
    lines = [
        "# Scenario files",
        "",
        "<!-- generated by `bpfvm mm schema` from the parser "
        "(mmcore/scenario/schema.py); do not edit -->",
        "",
        "A scenario is a TOML file: a machine, workload phases, the policy programs "
        "attached to hooks, a duration and a seed.  `bpfvm mm run FILE` runs it, "
        "`bpfvm mm compare FILE` runs it under the built-in policies too.",
        "",
        "- A key in the wrong place, a misspelt key, a value of the wrong type or out of "
        "range is an error naming the file and the key (`file: phases[1].processes.size: "
        "...`).",
        "- A **size** is an integer (bytes) or a string with a binary unit: `\"64KiB\"`, "
        "`\"2 GiB\"`, `\"512M\"` (K, M, G, T, P; `iB`/`B` optional).",
        "- Rates (`per tick`) may be fractions: 0.25 means a 1-in-4 chance each tick.",
        "- `[low, high]` pairs are drawn uniformly, both ends included.",
        f"- Limits: {format_size(MAX_MACHINE_MEMORY)} of simulated memory (all nodes), "
        f"{MAX_NODES} nodes, {MAX_PER_TICK:,} events per tick for any rate or count, "
        f"{format_size(MAX_FILE_TOTAL)} of page-cache files (all phases), "
        f"{format_size(MAX_TEXT_FILE)} of file, UTF-8 text, no NaN or infinity.",
        "- Two `[[attach]]` entries for one hook are an error.",
        "",
        "| key | type | unit | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for k in schema_keys():
        words = k.default in ("", "required") or (
            " " in k.default and not k.default.startswith(("[", "{", '"')))
        cells = (f"`{k.key}`", k.type, k.unit, k.default if words else f"`{k.default}`",
                 k.meaning)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "An example: `programs/tier_placement.toml`; every shipped scenario is in "
              "`programs/`.", ""]
    return "\n".join(lines)
