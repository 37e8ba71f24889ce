"""The layers of the tree stay true: imports only run downward, and no cycles.

Every module of ``bpfvm``, ``verifier`` and ``mmcore`` is read as an AST;
every import counts, function-level ones included, except those under
``if TYPE_CHECKING:`` (type-only).  Each module belongs to a layer by its
path; a layer lists the layers it may import (``../shared/DESIGN.md`` has
the same table in words).  The rules, the cycle check and the ban on flat
prefix families (``fuzz_gen.py`` beside ``fuzz_exec.py``: such a family is
a subpackage) are checked here, so a change that breaks them fails CI.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("bpfvm", "verifier", "mmcore")
BPFVM_TOP = {"bpfvm", "bpfvm.program", "bpfvm.maps", "bpfvm.helpers", "bpfvm.stdhelpers",
             "bpfvm.vmenv", "bpfvm.errors", "bpfvm.hookspec", "bpfvm.engine", "bpfvm.toolchain",
             "bpfvm.limits", "bpfvm.native", "bpfvm.usercache"}
MM_BASE = {"mmcore", "mmcore.constants", "mmcore.errors", "mmcore.sources"}
MM_MACHINE = {"mmcore.mm", "mmcore.metrics", "mmcore.invariants"}
DRIVERS = {"bpfvm.load", "bpfvm.conformance"}
# The vocabulary every module may use: errors and fixed-width integer conversions.
BASE = {"bpfvm.errors", "bpfvm.isa.bits"}

# layer -> layers it may import (itself always included)
ALLOWED: dict[str, set[str]] = {
    "isa": set(),
    "bpfvm": {"isa"},
    "asm": {"isa", "bpfvm"},
    "interp": {"isa", "bpfvm"},
    "jit": {"isa", "bpfvm"},
    "verifier.domains": set(),
    "verifier": {"verifier.domains", "isa", "bpfvm.records"},
    "driver": {"isa", "bpfvm", "asm", "interp", "jit", "verifier", "verifier.domains"},
    "mm.base": {"bpfvm.records"},
    "mm.hooks": {"mm.base", "bpfvm", "driver.loader"},
    "mm.phys": {"mm.base", "mm.hooks", "bpfvm", "driver.loader"},
    "mm.virt": {"mm.base", "mm.hooks", "mm.phys", "mm.pagetables", "bpfvm", "driver.loader"},
    "mm.pagetables": {"mm.base", "mm.hooks", "mm.phys", "bpfvm", "driver.loader"},
    "mm.machine": {"mm.base", "mm.hooks", "mm.phys", "mm.virt", "mm.pagetables", "bpfvm"},
    "mm.scenario": {"mm.base", "mm.hooks", "mm.phys", "mm.virt", "mm.pagetables",
                    "mm.machine", "bpfvm", "driver.loader"},
    "mm.studies": {"mm.base", "mm.hooks", "mm.phys", "mm.virt", "mm.pagetables",
                   "mm.machine", "mm.scenario", "bpfvm", "driver.loader"},
    "fuzz": {"isa", "bpfvm", "asm", "interp", "jit", "verifier", "verifier.domains", "driver",
             "mm.hooks", "mm.base"},
    "cli": {"*"},
}
# The records the verifier and the MM vocabulary may read: programs, helpers, hooks, errors.
RECORDS = {"bpfvm", "bpfvm.program", "bpfvm.helpers", "bpfvm.hookspec", "bpfvm.errors"}


def layer_of(mod: str) -> str:
    parts = mod.split(".")
    if parts[0] == "bpfvm":
        if mod in BPFVM_TOP:
            return "bpfvm"
        if mod in DRIVERS:
            return "driver"
        if mod == "bpfvm.__main__":
            return "cli"
        return {"isa": "isa", "asm": "asm", "interp": "interp", "jit": "jit", "fuzz": "fuzz",
                "cli": "cli"}[parts[1]]
    if parts[0] == "verifier":
        return "verifier.domains" if mod.startswith("verifier.domains") else "verifier"
    if mod in MM_BASE:
        return "mm.base"
    if mod in MM_MACHINE or mod.startswith("mmcore.invariants."):
        return "mm.machine"
    return "mm." + parts[1]


def allows(src: str, dst: str) -> bool:
    """May module ``src`` import module ``dst``?"""
    a, b = layer_of(src), layer_of(dst)
    if a == b or dst in BASE:
        return True
    rules = ALLOWED[a]
    if "*" in rules or b in rules:
        return True
    if "bpfvm.records" in rules and dst in RECORDS:
        return True
    return "driver.loader" in rules and dst == "bpfvm.load"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                skip.update(id(n) for n in ast.walk(sub))
    return skip


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Project modules ``path`` imports at run time (function level included)."""
    mod = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != mod:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    known = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, known) for p in files}


GRAPH = _graph()


def test_the_graph_is_read() -> None:
    assert "bpfvm.isa.insn" in GRAPH["bpfvm.program"]
    assert "verifier.domains.tnum" in GRAPH["verifier.domains.interval"]
    assert len(GRAPH) > 100


@pytest.mark.parametrize("mod", sorted(GRAPH))
def test_imports_run_downward(mod: str) -> None:
    bad = sorted(dst for dst in GRAPH[mod] if not allows(mod, dst))
    assert not bad, f"{mod} ({layer_of(mod)}) imports {bad}"


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    # A package face importing its own submodules is not a cycle of layers.
    cycles = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert not cycles, f"import cycles: {cycles}"


def test_no_flat_prefix_families() -> None:
    families: dict[tuple[str, str], list[str]] = defaultdict(list)
    for mod in GRAPH:
        pkg, _, leaf = mod.rpartition(".")
        if "_" in leaf.strip("_"):
            families[(pkg, leaf.split("_")[0])].append(leaf)
    flat = {f"{pkg}.{prefix}_*": sorted(leaves) for (pkg, prefix), leaves in families.items()
            if len(leaves) > 1}
    assert not flat, f"prefix families that should be subpackages: {flat}"


def test_rules_catch_a_violation() -> None:
    assert not allows("verifier.api", "bpfvm.interp.interpreter")
    assert not allows("verifier.domains.tnum", "bpfvm.isa.insn")
    assert not allows("mmcore.phys.buddy", "bpfvm.jit.engine")
    assert not allows("mmcore.hooks.dispatch", "bpfvm.fuzz.campaign")
    assert not allows("bpfvm.asm.assembler", "mmcore.hooks.helpers")
    assert not allows("mmcore.pagetables.loading", "bpfvm.isa.insn")
    assert not allows("mmcore.pagetables.loading", "bpfvm.interp.interpreter")
    assert allows("bpfvm.cli.verify", "verifier.api")
