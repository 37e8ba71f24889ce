"""The hook table: one set of records, read by the MM core to build contexts."""

from __future__ import annotations

import pytest

from bpfvm.hookspec import HookSpec
from mmcore.hooks.dispatch import ctx_struct
from mmcore.hooks.host import MM_HELPER_SPECS, MmEnv, policy_helpers
from mmcore.hooks.specs import HOOKS, POLICY_HELPERS, POLICY_HOOKS, canonical
from mmcore.sources import Source
from tests.mmcore.machines import small_mm


def decode(spec: HookSpec, ctx: bytes) -> dict[str, int]:
    return {f.name: int.from_bytes(ctx[f.offset:f.offset + f.size], "little") for f in spec.fields}


class Recorder:
    """An engine that remembers each context and returns a fixed value."""

    def __init__(self, value: int, write: dict[int, int] | None = None) -> None:
        self.value, self.write, self.seen = value, write or {}, []

    def run(self, ctx: bytearray) -> int:
        self.seen.append(bytes(ctx))
        for off, v in self.write.items():
            ctx[off:off + 4] = v.to_bytes(4, "little")
        return self.value


def test_mm_core_uses_the_same_records() -> None:
    mm = small_mm()
    for name in POLICY_HOOKS:
        assert mm.hooks.points[name].spec is HOOKS[name]


@pytest.mark.parametrize("spec", list(HOOKS.values()), ids=lambda s: s.name)
def test_layouts_pack_and_fields_do_not_overlap(spec: HookSpec) -> None:
    assert ctx_struct(spec).size == spec.ctx_size
    ends = 0
    for f in sorted(spec.fields, key=lambda f: f.offset):
        assert f.offset >= ends and f.offset % f.size == 0
        ends = f.offset + f.size
    assert spec.ret_min <= spec.ret_max


@pytest.mark.parametrize(("name", "expected"), [
    ("placement", "placement"), ("mm_placement", "placement"), ("mm_zone_resize", "zone_resize"),
    ("pt_map", "pt_map"), ("mm_nope", None), ("nope", None),
])
def test_canonical_names(name: str, expected: str | None) -> None:
    assert canonical(name) == expected


def test_prefixed_names_reach_the_same_point_and_stats() -> None:
    mm = small_mm()
    mm.hooks.attach("mm_lifetime", Recorder(1))
    assert mm.hooks.attached("lifetime")
    mm.kernel.alloc(Source.NETBUF, 0, 5)
    stats = mm.hooks.stats()
    assert stats["mm_lifetime"] is stats["lifetime"] and stats["lifetime"]["calls"] == 1
    assert "mm_lifetime" in mm.hooks.points and "mm_nothing" not in mm.hooks.points
    assert list(stats) == list(POLICY_HOOKS)


def test_policy_hooks_allow_the_mm_helpers_and_the_table_has_them() -> None:
    table = policy_helpers()
    for name in POLICY_HOOKS:
        assert set(HOOKS[name].helpers) == set(POLICY_HELPERS)
    for spec in MM_HELPER_SPECS:
        assert spec.id >= 1000 and table.by_name(spec.name) is spec
        assert spec.name in POLICY_HELPERS
    assert table.by_name("map_lookup_elem") is not None


def test_placement_context_from_the_mm() -> None:
    mm = small_mm(4096, 0, nodes=2)
    rec = Recorder(1)
    mm.hooks.attach("placement", rec)
    p = mm.spawn(home_node=0)
    va = p.mmap(1 << 20, "none", hint=700)
    free = [mm.pa.free_pages_node(0), mm.pa.free_pages_node(1)]
    p.fault(va)
    ctx = decode(HOOKS["placement"], rec.seen[0])
    assert ctx == {"order": 0, "source": Source.ANON, "pid": p.pid, "home_node": 0, "nr_nodes": 2,
                   "hint": 700, "free_node0": free[0], "free_node1": free[1], "free_node2": 0,
                   "free_node3": 0}


def test_hugepage_context_from_the_mm() -> None:
    mm = small_mm(8192)
    rec = Recorder(1)
    mm.hooks.attach("hugepage", rec)
    p = mm.spawn()
    va = p.mmap(8 << 20, "thp")
    p.fault(va)
    p.fault(va + (2 << 20))
    first, second = (decode(HOOKS["hugepage"], c) for c in rec.seen)
    assert first["pid"] == p.pid and first["allowed"] == 3 and first["va"] == va
    assert (first["vma_start"], first["vma_end"]) == (va, va + (8 << 20))
    # 16 pageblocks, one split for page-table pages: 15 free 2 MiB units, then 14
    assert first["free_2m"] == 15 and first["free_1g"] == 0
    assert (second["huge_2m"], second["rss"], second["free_2m"]) == (1, 512, 14)


def test_zone_resize_context_and_decision() -> None:
    mm = small_mm(4096, 2048)
    rec = Recorder(-1 & ((1 << 64) - 1))  # shrink by one pageblock
    mm.hooks.attach("zone_resize", rec)
    mm.reclaim.window = [30, 70]
    mm.after_reclaim(0)
    ctx = decode(HOOKS["zone_resize"], rec.seen[0])
    assert ctx["scanned_unmovable"] == 30 and ctx["scanned_movable"] == 70
    assert (ctx["unmovable_blocks"], ctx["movable_blocks"]) == (4, 4)
    assert (ctx["min_blocks"], ctx["max_blocks"]) == (1, 7)
    assert mm.phys.zones[0].managed == 1536 and mm.reclaim.window == [0, 0]


def test_reclaim_hook_splits_and_targets_one_process() -> None:
    mm = small_mm(8192)
    a, b = mm.spawn(), mm.spawn()
    for p, n in ((b, 100), (a, 300)):  # b's pages are the oldest: first at the LRU tail
        va = p.mmap(n << 12, "none")
        for i in range(n):
            p.access(va + (i << 12))
    for p in (a, b):  # clear accessed bits so that reclaim evicts
        for pfn in range(8192):
            if mm.frames.owner[pfn] == p.pid:
                p.referenced(pfn, mm.frames.get_index(pfn))
    target_off = HOOKS["reclaim"].field_named("target_pid").offset
    rec = Recorder(100, {target_off: b.pid})
    mm.hooks.attach("reclaim", rec)
    before = (a.present[0], b.present[0])
    mm.reclaim.shrink_node(0, 32, 1)
    ctx = decode(HOOKS["reclaim"], rec.seen[0])
    assert ctx["nr_to_reclaim"] == 32 and ctx["nr_procs"] == 2 and ctx["largest_pid"] == a.pid
    assert ctx["anon_inactive"] == 400 and ctx["for_movable"] == 1 and ctx["target_pid"] == 0
    assert a.present[0] == before[0] and b.present[0] < before[1]
    mm.check()
    mm.hooks.detach("reclaim")  # the built-in split takes from a's pages too
    mm.reclaim.shrink_node(0, 256, 1)
    assert a.present[0] < before[0]


def test_reclaim_target_that_is_no_process_is_a_fallback() -> None:
    """Propose, validate, fall back: a target_pid naming no process fails
    validation, so the built-in split decides (for every process) and the
    hook counts a fallback."""
    mm = small_mm(4096)
    off = HOOKS["reclaim"].field_named("target_pid").offset
    mm.hooks.attach("reclaim", Recorder(100, {off: 99999}))
    builtin = mm.reclaim.default_split(20, 20)
    assert builtin != 100
    assert mm.reclaim.split(0, 32, [10, 10, 10, 10], 1) == (builtin, 0)
    stats = mm.hooks.stats()["reclaim"]
    assert stats["calls"] == 1 and stats["fallbacks"] == 1 and stats["errors"] == 0


def test_reclaim_without_target_is_no_fallback() -> None:
    mm = small_mm(4096)
    mm.hooks.attach("reclaim", Recorder(100))
    assert mm.reclaim.split(0, 32, [10, 10, 10, 10], 1) == (100, 0)
    assert mm.hooks.stats()["reclaim"]["fallbacks"] == 0


def test_lifetime_context_and_default_without_program() -> None:
    mm = small_mm()
    assert mm.frames.mt[mm.kernel.alloc(Source.NETBUF, 1, 5, site=3)] == 0
    rec = Recorder(1)
    mm.hooks.attach("lifetime", rec)
    pfn = mm.kernel.alloc(Source.NETBUF, 1, 5, site=3)
    assert decode(HOOKS["lifetime"], rec.seen[0]) == {"source": Source.NETBUF, "order": 1,
                                                      "site": 3, "pid": 0}
    assert mm.frames.mt[pfn] == 2


class FakeVm:
    def __init__(self, env: MmEnv) -> None:
        self.env = env


def test_mm_helpers_read_the_mm() -> None:
    mm = small_mm(4096, 0, nodes=2)
    p = mm.spawn()
    va = p.mmap(4 << 20, "thp")
    p.fault(va)
    mm.tick = 7
    vm = FakeVm(MmEnv(mm))
    by = {s.name: s.impl for s in MM_HELPER_SPECS}
    assert by["mm_node_free_pages"](vm, 1, 0, 0, 0, 0) == mm.pa.free_pages_node(1)
    assert by["mm_node_free_pages"](vm, 9, 0, 0, 0, 0) == 0
    assert by["mm_node_distance"](vm, 0, 1, 0, 0, 0) == 20
    assert by["mm_free_blocks"](vm, 1, 9, 0, 0, 0) == sum(sum(z.nr_free[9:])
                                                          for z in mm.phys.nodes[1].zones)
    assert by["mm_proc_rss"](vm, p.pid, 0, 0, 0, 0) == 512
    assert by["mm_proc_huge"](vm, p.pid, 1, 0, 0, 0) == 1
    assert by["mm_proc_huge"](vm, 999, 1, 0, 0, 0) == 0
    assert by["mm_tick"](vm, 0, 0, 0, 0, 0) == 7
    assert vm.env.now_ns() == 7_000_000


def test_mm_helpers_without_an_mm_env_fail_clearly() -> None:
    from bpfvm.vmenv import VmEnv

    with pytest.raises(RuntimeError, match="MmEnv"):
        MM_HELPER_SPECS[0].impl(FakeVm(VmEnv()), 0, 0, 0, 0, 0)


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_programs_call_mm_helpers_on_both_engines(engine: str) -> None:
    from bpfvm.asm.assembler import assemble
    from bpfvm.load import load

    text = (".hook placement\n    r6 = r1\n    r1 = 1\n    call mm_node_free_pages\n"
            "    r7 = r0\n    call mm_tick\n    r7 += r0\n    r0 = 0\n"
            "    if r7 == 0 goto out\n    r0 = 1\nout:\n    exit\n")
    helpers = policy_helpers()
    mm = small_mm(4096, 0, nodes=2)
    eng = load(assemble(text, "free.s", helpers=helpers), engine=engine, helpers=helpers,
               hook=HOOKS["placement"], env=MmEnv(mm)).engine
    assert eng.run(bytearray(HOOKS["placement"].ctx_size)) == 1
    mm.pa.take_range(mm.phys.zones[2], mm.phys.zones[2].start, mm.phys.zones[2].end)
    assert mm.pa.free_pages_node(1) == 0
    assert eng.run(bytearray(HOOKS["placement"].ctx_size)) == 0
    mm.tick = 3
    assert eng.run(bytearray(HOOKS["placement"].ctx_size)) == 1
