"""Parameter sweeps: one scenario run per seed × grid point × variant, on this
machine's cores or on a Dask cluster.

A sweep file (TOML) names a scenario and what to vary::

    scenario = "tier_placement.toml"     # relative to the sweep file
    seeds = [1, 2, 3]
    variants = ["builtin", "programs"]   # the default: both
    [grid]
    duration = [50, 100]
    "machine.nodes.0.memory" = ["256MiB", "512MiB"]
    phases.0.processes.hot_share = [0.2, 0.5]   # unquoted dotted keys work too

Grid keys are dotted paths into the scenario's TOML (a number indexes an
array); every container on the way must exist in the scenario, the last key
may be new where the scenario schema accepts it.  ``builtin`` runs the
built-in policies (the scenario's ``[baseline]`` if it has one, as ``bpfvm mm
compare`` does), ``programs`` the scenario with its ``[[attach]]`` programs.
Every problem of the file is a :class:`~mmcore.errors.ScenarioError`
(``file: key: message``); each value of each axis is checked by applying it
to the scenario and parsing the result.

:func:`plan` turns a :class:`Sweep` into :class:`Task` objects, which carry
everything a worker needs: the scenario as a TOML dict with the grid values
and seed applied, and its programs read and verified here
(:func:`~mmcore.scenario.attach.verified_programs`), so a worker needs only
bpfvm installed, no shared disk.  :func:`run_task` (on the worker) returns
one row: the grid values, seed, variant, status (``ok`` or ``failed``),
message, wall time and every scalar metric of the run (dotted names such as
``access.mean_distance``), plus 2 MiB / 1 GiB success rates.  A run that fails
is a row with its message; the sweep goes on.

:func:`execute` runs tasks in this process (``jobs=1``), on a Dask
``LocalCluster`` of ``jobs`` worker processes, or on a running Dask
scheduler (``cluster="tcp://host:port"``), and hands every row to a callback
as it arrives.  :func:`frame`, :func:`read_rows` and :func:`write_rows` turn
rows into a pandas DataFrame and back (``.parquet`` via pyarrow, ``.csv``);
:func:`key` identifies a run in a results file (``--resume``).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import multiprocessing as mp
import os
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfvm.errors import BpfvmError
from bpfvm.limits import MAX_TEXT_FILE, read_bounded
from bpfvm.program import Program
from mmcore.errors import ScenarioError
from mmcore.scenario.attach import verified_programs
from mmcore.scenario.runner import Runner, baseline_of
from mmcore.scenario.schema import parse_scenario

if TYPE_CHECKING:
    import pandas as pd

VARIANTS = ("builtin", "programs")
FIXED = ("seed", "variant", "status", "message", "wall_seconds")
SWEEP_KEYS = ("scenario", "seeds", "variants", "grid")
FORMATS = (".parquet", ".csv")
SCENARIO_KEYS = ("name", "duration", "sample_every", "machine", "mm", "phases", "attach",
                 "baseline")
Row = dict[str, Any]


class SweepUnavailable(BpfvmError):
    """An optional dependency of sweeps (Dask, pandas, pyarrow) is missing."""

    exit_code = 2


def need(module: str) -> Any:
    """Import an optional dependency, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SweepUnavailable(f"sweeps need {module.split('.')[0]}: "
                               "pip install 'bpfvm[sweep]'") from None


# --- the sweep file -------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One grid axis: a dotted path into the scenario and its values."""

    path: str
    values: tuple[Any, ...]

    @property
    def native(self) -> bool:
        """True if every value is a scalar of one type (stored as is; else as JSON text)."""
        types = {type(v) for v in self.values}
        return len(types) == 1 and types <= {int, float, str, bool}

    def label(self, value: Any) -> Any:
        """How ``value`` appears in a results row."""
        return value if self.native else json.dumps(value)


@dataclass(frozen=True)
class Sweep:
    file: str
    scenario_file: str
    scenario: dict[str, Any]  # the scenario's TOML
    seeds: tuple[int, ...]
    variants: tuple[str, ...]
    axes: tuple[Axis, ...]

    @property
    def runs(self) -> int:
        n = len(self.seeds) * len(self.variants)
        for a in self.axes:
            n *= len(a.values)
        return n

    @property
    def columns(self) -> tuple[str, ...]:
        """The leading columns of every row: grid axes, then the fixed ones."""
        return tuple(a.path for a in self.axes) + FIXED


def _fail(file: str, key: str, msg: str) -> ScenarioError:
    return ScenarioError(file, key, msg)


def _flatten_grid(file: str, table: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``[grid]`` entries as (dotted path, values): quoted dotted keys and
    nested tables (unquoted dotted keys) both name a path."""
    if not isinstance(table, dict):
        raise _fail(file, "grid", "must be a table of dotted paths to arrays of values")
    for k, v in table.items():
        path = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            yield from _flatten_grid(file, v, path)
        else:
            yield path, v


def _step(container: Any, part: str) -> tuple[Any, Any] | None:
    """(container, key) for ``part`` of a path in ``container``, or None if
    ``container`` is neither a table nor an array indexed by ``part``."""
    if isinstance(container, dict):
        return container, part
    if isinstance(container, list) and part.isdigit():
        return container, int(part)
    return None


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` (dotted, numbers index arrays) in ``data`` in place.
    Raises KeyError with a message when the path does not exist."""
    parts = path.split(".")
    cur: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        step = _step(cur, part)
        if step is None:
            kind = "an array" if isinstance(cur, list) else "a value"
            raise KeyError(f"{'.'.join(parts[:i]) or '(top)'} is {kind}, "
                           f"so {where} does not exist in the scenario")
        box, k = step
        if isinstance(box, list) and k >= len(box):
            raise KeyError(f"{where} does not exist in the scenario "
                           f"({'.'.join(parts[:i])} has {len(box)} entries)")
        if last:
            box[k] = value
        elif isinstance(box, dict) and k not in box:
            raise KeyError(f"{where} does not exist in the scenario")
        else:
            cur = box[k]


def _quote(path: str) -> str:
    return f'grid."{path}"' if "." in path else f"grid.{path}"


def _int_list(file: str, key: str, v: Any) -> tuple[int, ...]:
    if not isinstance(v, list) or not v:
        raise _fail(file, key, "expected a non-empty array of integers")
    for x in v:
        if isinstance(x, bool) or not isinstance(x, int) or x < 0:
            raise _fail(file, key, f"expected non-negative integers, got {x!r}")
    if len(set(v)) != len(v):
        raise _fail(file, key, "duplicate seeds")
    return tuple(v)


def parse_sweep(data: dict[str, Any], file: str = "<sweep>") -> Sweep:
    """Validate a sweep file's TOML (``file`` resolves the scenario path)."""
    extra = sorted(set(data) - set(SWEEP_KEYS))
    if extra:
        raise _fail(file, extra[0], f"unknown key (expected {', '.join(SWEEP_KEYS)})")
    if "scenario" not in data:
        raise _fail(file, "scenario", "missing")
    if not isinstance(data["scenario"], str):
        raise _fail(file, "scenario", "expected a path to a scenario file")
    base = Path(file).resolve().parent if not file.startswith("<") else Path.cwd()
    sc_path = base / data["scenario"]
    try:
        sc_data = tomllib.loads(_read_text(sc_path, "scenario"))
    except BpfvmError as exc:
        why = str(exc).removeprefix(f"{sc_path}: ")
        raise _fail(file, "scenario", f"{data['scenario'][:200]}: {why}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(file, "scenario", f"{data['scenario'][:200]}: {exc}") from None
    except ValueError:  # an integer past Python's digit limit
        raise _fail(file, "scenario", f"{data['scenario'][:200]}: a number has too many "
                    "digits") from None
    sc_file = str(sc_path)
    sc = parse_scenario(sc_data, sc_file)  # the scenario itself must be valid
    seeds = _int_list(file, "seeds", data["seeds"]) if "seeds" in data else (sc.seed,)
    variants_raw = data.get("variants", list(VARIANTS))
    if not isinstance(variants_raw, list) or not variants_raw or \
            not all(isinstance(v, str) for v in variants_raw):
        raise _fail(file, "variants", f"expected a non-empty array of {', '.join(VARIANTS)}")
    for v in variants_raw:
        if v not in VARIANTS:
            raise _fail(file, "variants", f"unknown variant {v!r} (one of {', '.join(VARIANTS)})")
    if len(set(variants_raw)) != len(variants_raw):
        raise _fail(file, "variants", "duplicate variants")
    if "programs" in variants_raw and not sc.attach:
        raise _fail(file, "variants", f"{data['scenario']} attaches no program "
                    "([[attach]]): 'programs' would run the built-in policies")
    axes = []
    for path, values in _flatten_grid(file, data.get("grid", {})):
        key = _quote(path)
        if path == "seed":
            raise _fail(file, key, "vary the seed with 'seeds'")
        if path in FIXED:
            raise _fail(file, key, f"'{path}' is a column of the results")
        if not isinstance(values, list) or not values:
            raise _fail(file, key, "expected a non-empty array of values")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise _fail(file, key, "duplicate values")
        for j, value in enumerate(values):
            trial = copy.deepcopy(sc_data)
            try:
                set_path(trial, path, value)
            except KeyError as exc:
                raise _fail(file, key, exc.args[0]) from None
            try:
                parse_scenario(trial, sc_file)
            except ScenarioError as exc:
                raise _fail(file, f"{key}[{j}]", f"{value!r}: {exc.key}: {exc.message}") from None
        axes.append(Axis(path, tuple(values)))
    return Sweep(file, sc_file, sc_data, seeds, tuple(variants_raw), tuple(axes))


def load_sweep(path: str | Path) -> Sweep:
    p = Path(path)
    try:
        data = tomllib.loads(_read_text(p, "sweep file"))
    except BpfvmError as exc:
        raise ScenarioError(str(p), "(file)", str(exc).removeprefix(f"{p}: ")) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(p), "(toml)", str(exc)) from None
    except ValueError:  # an integer past Python's digit limit
        raise ScenarioError(str(p), "(toml)", "a number has too many digits") from None
    return parse_sweep(data, str(p))


def _read_text(path: Path, what: str) -> str:
    """UTF-8 text of at most :data:`~bpfvm.limits.MAX_TEXT_FILE` bytes
    (an endless file such as /dev/zero is refused, not read)."""
    raw = read_bounded(path, MAX_TEXT_FILE, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BpfvmError(f"{path}: not UTF-8 text (byte {exc.start})") from None


# --- tasks: what travels to a worker ---------------------------------------------------


@dataclass(frozen=True)
class Task:
    index: int
    labels: tuple[tuple[str, Any], ...]  # (axis path, value as stored in a row)
    seed: int
    variant: str
    scenario: dict[str, Any]  # the scenario's TOML with grid values and seed applied
    file: str  # for messages only: workers read no file
    programs: tuple[Program, ...] | None  # verified here; None for the built-in variant
    error: str = ""  # the run cannot start (its scenario or programs are bad)

    @property
    def key(self) -> tuple[str, ...]:
        return key(dict(self.labels), self.seed, self.variant)


def key(labels: dict[str, Any], seed: Any, variant: Any) -> tuple[str, ...]:
    """A run's identity in a results file: grid values (in path order), seed, variant."""
    return tuple(_key_part(labels[p]) for p in sorted(labels)) + (str(int(seed)), str(variant))


def _key_part(v: Any) -> str:
    if hasattr(v, "item"):  # a numpy scalar read back from a file
        v = v.item()
    return str(v)


def plan(sweep: Sweep, skip: Iterable[tuple[str, ...]] = ()) -> list[Task]:
    """The sweep's runs in order (grid points, then seeds, then variants),
    without those whose :func:`key` is in ``skip``.  Programs are read and
    verified once per distinct ``[[attach]]`` list; a grid point whose
    scenario or programs are bad gives tasks carrying the error."""
    skipped = set(skip)
    programs: dict[str, tuple[Program, ...] | str] = {}
    tasks = []
    points = itertools.product(*(a.values for a in sweep.axes))
    index = 0
    for point in points:
        for seed in sweep.seeds:
            data = copy.deepcopy(sweep.scenario)
            for a, value in zip(sweep.axes, point, strict=True):
                set_path(data, a.path, copy.deepcopy(value))
            data["seed"] = seed
            labels = tuple((a.path, a.label(v)) for a, v in zip(sweep.axes, point, strict=True))
            for variant in sweep.variants:
                t = Task(index, labels, seed, variant, data, sweep.scenario_file, None)
                index += 1
                if t.key in skipped:
                    continue
                if variant == "programs":
                    shipped = _programs(data, sweep.scenario_file, programs)
                    t = replace(t, error=shipped) if isinstance(shipped, str) else \
                        replace(t, programs=shipped)
                tasks.append(t)
    return tasks


def _programs(data: dict[str, Any], file: str,
              cache: dict[str, tuple[Program, ...] | str]) -> tuple[Program, ...] | str:
    """The verified programs of a scenario (cached by its attach list), or the error."""
    tag = json.dumps(data.get("attach", []), sort_keys=True)
    if tag not in cache:
        try:
            cache[tag] = verified_programs(parse_scenario(data, file))
        except BpfvmError as exc:
            cache[tag] = str(exc)
    return cache[tag]


# --- one run (on a worker) ---------------------------------------------------------------


def scalar_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The numbers of a run's metrics, flattened to dotted names (arrays and
    text left out), plus ``huge_2m.success_rate`` and ``huge_1g.success_rate``."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(scalar_metrics(v, name + "."))
        elif v is None or isinstance(v, bool | int | float):
            out[name] = v
    if not prefix:
        for size in ("huge_2m", "huge_1g"):
            h = metrics.get(size)
            if isinstance(h, dict) and "attempts" in h:
                out[f"{size}.success_rate"] = (
                    round(h["successes"] / h["attempts"], 6) if h["attempts"] else None)
    return out


def run_task(task: Task) -> Row:
    """Run one task and return its row; a failure is a row too."""
    row: Row = dict(task.labels)
    row.update(seed=task.seed, variant=task.variant, status="ok", message="")
    t0 = time.perf_counter()
    try:
        if task.error:
            raise BpfvmError(task.error)
        sc = parse_scenario(task.scenario, task.file)
        if task.variant == "builtin":
            runner = Runner(baseline_of(sc), attach=False)
        else:
            runner = Runner(sc, programs=task.programs)
        results = runner.run()
        metrics = scalar_metrics(results["metrics"])
    except Exception as exc:  # noqa: BLE001 - a failed run is a row, not the sweep's end
        row.update(status="failed", message=_message(exc), wall_seconds=_since(t0))
        return row
    row["wall_seconds"] = _since(t0)
    for name, v in metrics.items():
        row.setdefault(name, v)
    return row


def _since(t0: float) -> float:
    return round(time.perf_counter() - t0, 4)


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, BpfvmError) else f"{type(exc).__name__}: {text}"


def failed_row(task: Any, message: str) -> Row:
    """The row of a task that never returned (its worker died, it could not be sent)."""
    row: Row = dict(task.labels)
    row.update(seed=task.seed, variant=task.variant, status="failed", message=message,
               wall_seconds=None)
    return row


# --- running many ------------------------------------------------------------------------


@dataclass
class Execution:
    """How to run a sweep: ``jobs`` local processes (one: in this process,
    unless ``local_cluster``), or a scheduler's address."""

    jobs: int = 1
    cluster: str | None = None
    local_cluster: bool = False  # a LocalCluster even for one job (to measure its cost)
    connect_timeout: float = 10.0
    workers: list[str] = field(default_factory=list)  # filled in: the workers used


@contextmanager
def _client(how: Execution, tasks: int) -> Iterator[Any]:
    distributed = need("distributed")
    if how.cluster:
        try:
            client = distributed.Client(how.cluster, timeout=how.connect_timeout,
                                        set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise BpfvmError(f"--cluster {how.cluster}: cannot connect: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    dask = need("dask")
    # Forked workers start in a fraction of a second and inherit the imported
    # simulator; spawned ones take seconds each.
    method = "fork" if sys.platform == "linux" and "fork" in mp.get_all_start_methods() \
        else dask.config.get("distributed.worker.multiprocessing-method")
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        cluster = distributed.LocalCluster(
            n_workers=max(1, min(how.jobs, tasks)), threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=logging.ERROR)
    try:
        client = distributed.Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def execute(tasks: Sequence[Any], how: Execution,
            on_row: Callable[[Any, Row], None], run: Callable[[Any], Row] = run_task) -> None:
    """Run ``tasks``; ``on_row(task, row)`` is called in this process for each
    as it finishes (in completion order).  ``run`` (a module-level function,
    so workers can unpickle it) turns a task into its row; a task has
    ``labels``, ``seed`` and ``variant`` (for the row of a lost task)."""
    if not tasks:
        return
    if how.cluster is None and how.jobs <= 1 and not how.local_cluster:
        how.workers = [f"local pid {os.getpid()}"]
        for t in tasks:
            on_row(t, run(t))
        return
    distributed = need("distributed")
    with _client(how, len(tasks)) as client:
        how.workers = sorted(client.scheduler_info().get("workers", {}))
        if not how.workers and how.cluster:
            raise BpfvmError(f"--cluster {how.cluster}: the scheduler has no workers")
        futures = client.map(run, list(tasks), pure=False)
        by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        try:
            for fut in distributed.as_completed(futures, loop=client.loop):
                task = by_key[fut.key]
                try:
                    row = fut.result()
                except Exception as exc:  # noqa: BLE001 - lost worker, unpicklable result
                    row = failed_row(task, f"worker: {_message(exc)}")
                on_row(task, row)
                fut.release()
        finally:
            for f in futures:
                if not f.done():
                    f.cancel()


# --- results files -------------------------------------------------------------------------


def frame(rows: Sequence[Row], sweep: Sweep) -> pd.DataFrame:
    """Rows as a DataFrame: the sweep's columns first, then metrics in order of appearance."""
    pd = need("pandas")
    cols = list(sweep.columns)
    seen = set(cols)
    for r in rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                cols.append(k)
    df = pd.DataFrame(list(rows), columns=cols)
    for a in sweep.axes:
        if not a.native:
            df[a.path] = df[a.path].astype(str)
    return df


def check_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise BpfvmError(f"{path}: unknown results format '{suffix}' "
                         f"(expected {' or '.join(FORMATS)})")
    return suffix


def write_rows(df: pd.DataFrame, path: str | Path) -> None:
    """Write atomically (a temporary file renamed over ``path``)."""
    path = Path(path)
    suffix = check_format(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if suffix == ".parquet":
            need("pyarrow")
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        raise BpfvmError(f"{path}: cannot write: {exc.strerror or exc}") from None


def read_rows(path: str | Path, sweep: Sweep) -> pd.DataFrame:
    """A results file written by :func:`write_rows` for ``sweep``; its
    columns must match the sweep's (the same grid axes)."""
    pd = need("pandas")
    path = Path(path)
    suffix = check_format(path)
    try:
        if suffix == ".parquet":
            need("pyarrow")
            df = pd.read_parquet(path)
        else:  # grid values as text, as key() compares them
            df = pd.read_csv(path, dtype={a.path: str for a in sweep.axes} | {"message": str},
                             keep_default_na=True)
    except OSError as exc:
        raise BpfvmError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow parse errors of all kinds
        raise BpfvmError(f"{path}: not a results file: {exc}") from None
    missing = [c for c in sweep.columns if c not in df.columns]
    if missing:
        raise BpfvmError(f"{path}: not a results file of this sweep (no column "
                         f"'{missing[0]}')")
    # grid columns of another sweep: paths into the scenario, which metric names never are
    axes = {a.path for a in sweep.axes}
    extra = [c for c in df.columns if c not in axes and c not in FIXED
             and c.split(".")[0] in SCENARIO_KEYS]
    df["message"] = df["message"].fillna("")
    if extra:
        raise BpfvmError(f"{path}: not a results file of this sweep (grid column '{extra[0]}')")
    return df


def done_keys(df: pd.DataFrame, sweep: Sweep) -> set[tuple[str, ...]]:
    """Keys of the runs of ``df`` that finished ok (failed ones are run again)."""
    out = set()
    paths = [a.path for a in sweep.axes]
    for rec in df[df["status"] == "ok"][paths + ["seed", "variant"]].to_dict("records"):
        out.add(key({p: rec[p] for p in paths}, rec["seed"], rec["variant"]))
    return out


def row_key(row: Row, sweep: Sweep) -> tuple[str, ...]:
    return key({a.path: row[a.path] for a in sweep.axes}, row["seed"], row["variant"])


def merge(old: pd.DataFrame | None, new_rows: Sequence[Row], sweep: Sweep) -> pd.DataFrame:
    """Old rows not run again, then the new rows, in the sweep's run order
    (rows of runs the sweep no longer has go last)."""
    order = {t.key: t.index for t in plan_keys(sweep)}
    rows: list[Row] = []
    fresh = {row_key(r, sweep) for r in new_rows}
    if old is not None:
        for rec in old.to_dict("records"):
            if row_key(rec, sweep) not in fresh:
                rows.append(rec)
    rows.extend(new_rows)
    rows.sort(key=lambda r: order.get(row_key(r, sweep), len(order)))
    return frame(rows, sweep)


@dataclass(frozen=True)
class _Key:
    key: tuple[str, ...]
    index: int


def plan_keys(sweep: Sweep) -> list[_Key]:
    """The keys of every run of the sweep, in run order (no programs read)."""
    out = []
    index = 0
    for point in itertools.product(*(a.values for a in sweep.axes)):
        labels = {a.path: a.label(v) for a, v in zip(sweep.axes, point, strict=True)}
        for seed in sweep.seeds:
            for variant in sweep.variants:
                out.append(_Key(key(labels, seed, variant), index))
                index += 1
    return out
