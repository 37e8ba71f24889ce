"""The placement and huge-page hooks write only the context fields the
attached program loads (the verifier's ``ctx_reads``): a program loading
one field must see it hold the value the MM core's state gives it at that
fault (the built-in policy's inputs), on both engines, whichever other
program was attached before it."""

from __future__ import annotations

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.load import load
from mmcore.constants import NR_ORDERS, ORDER_2M
from mmcore.hooks.host import MmEnv, policy_helpers
from mmcore.hooks.specs import HOOKS, HUGEPAGE, PLACEMENT
from mmcore.mm import MM
from mmcore.phys.physmem import MachineSpec, NodeSpec

WIDTH = {4: "u32", 8: "u64"}
HINT = 700


def reader(hook: str, offset: int, size: int) -> str:
    """A program storing the context field at ``offset`` in its map, returning 0."""
    return (f".hook {hook}\n.map seen array key=4 value=8 entries=1\n"
            f"    r6 = *({WIDTH[size]} *)(r1 + {offset})\n"
            "    r1 = map_value[seen] + 0 ll\n"
            "    *(u64 *)(r1 + 0) = r6\n"
            "    r0 = 0\n"
            "    exit\n")


def attach(mm: MM, hook: str, text: str, engine: str):
    helpers = policy_helpers()
    prog = assemble(text, helpers=helpers)
    loaded = load(prog, engine=engine, helpers=helpers, hook=HOOKS[hook], env=MmEnv(mm))
    mm.hooks.attach(hook, loaded.engine)
    return loaded.engine


def seen(eng) -> int:
    return int.from_bytes(eng.maps[0].lookup(bytes(4)), "little")


def node_free(mm: MM, nid: int) -> int:
    return sum(z.free_pages for z in mm.phys.nodes[nid].zones)


def test_the_verifier_lists_the_fields_a_program_loads():
    helpers = policy_helpers()
    text = (".hook placement\n    r0 = *(u32 *)(r1 + 12)\n    r2 = *(u64 *)(r1 + 24)\n"
            "    r0 &= 1\n    exit\n")
    loaded = load(assemble(text, helpers=helpers), helpers=helpers, hook=PLACEMENT)
    assert loaded.engine.ctx_reads == {(12, 4), (24, 8)}
    none = ".hook placement\n    r0 = 0\n    exit\n"
    loaded = load(assemble(none, helpers=helpers), helpers=helpers, hook=PLACEMENT)
    assert loaded.engine.ctx_reads == frozenset()


def test_a_field_loaded_only_through_a_spilled_pointer_is_listed():
    helpers = policy_helpers()
    text = (".hook placement\n    *(u64 *)(r10 - 8) = r1\n    r3 = *(u64 *)(r10 - 8)\n"
            "    r0 = *(u32 *)(r3 + 8)\n    r0 &= 1\n    exit\n")
    loaded = load(assemble(text, helpers=helpers), helpers=helpers, hook=PLACEMENT)
    assert loaded.engine.ctx_reads == {(8, 4)}


@pytest.mark.parametrize("engine", ["interp", "jit"])
@pytest.mark.parametrize("name", [f.name for f in PLACEMENT.fields])
def test_placement_program_sees_each_field_it_loads(engine, name):
    mm = MM(MachineSpec((NodeSpec(1 << 16), NodeSpec(1 << 16))))
    # a program loading only another field first: the one under test must be written anyway
    other = next(f for f in PLACEMENT.fields if f.name != name)
    attach(mm, "placement", reader("placement", other.offset, other.size), "interp")
    p = mm.spawn(home_node=1)
    va = p.mmap(8 << 20, "thp", hint=HINT)
    small = p.mmap(1 << 20, "none", hint=HINT)
    p.fault(va)
    f = PLACEMENT.field_named(name)
    eng = attach(mm, "placement", reader("placement", f.offset, f.size), engine)
    expected = {"source": 0, "pid": p.pid, "home_node": 1, "nr_nodes": 2, "hint": HINT,
                "free_node2": 0, "free_node3": 0}
    for k, at in enumerate((va + (2 << 20), small + 4096)):  # a 2 MiB page, a 4 KiB one
        want = dict(expected, order=9 if k == 0 else 0, free_node0=node_free(mm, 0),
                    free_node1=node_free(mm, 1))
        p.fault(at)
        assert seen(eng) == want[name], (name, k)
    assert mm.hooks.stats()["placement"]["fallbacks"] == 0


@pytest.mark.parametrize("engine", ["interp", "jit"])
@pytest.mark.parametrize("name", [f.name for f in HUGEPAGE.fields])
def test_hugepage_program_sees_each_field_it_loads(engine, name):
    mm = MM(MachineSpec((NodeSpec(1 << 16), NodeSpec(1 << 16))))
    other = next(f for f in HUGEPAGE.fields if f.name != name)
    attach(mm, "hugepage", reader("hugepage", other.offset, other.size), "interp")
    p = mm.spawn(home_node=1)
    va = p.mmap(16 << 20, "thp")
    p.fault(va)
    f = HUGEPAGE.field_named(name)
    eng = attach(mm, "hugepage", reader("hugepage", f.offset, f.size), engine)
    for k in range(1, 4):  # the program asks for 4 KiB: every fault is a new one
        at = va + k * (2 << 20) + k * 4096
        vma = p.find_vma(at)
        zones = mm.phys.nodes[1].zones
        want = {"pid": p.pid, "allowed": p._allowed(vma, at), "va": at,
                "vma_start": vma.start, "vma_end": vma.end, "huge_2m": p.present[1],
                "huge_1g": p.present[2], "rss": p.rss_pages,
                "free_2m": sum(z.nr_free[o] << (o - ORDER_2M)
                               for z in zones for o in range(ORDER_2M, NR_ORDERS)),
                "free_1g": mm.hugetlb.free_count(1)}
        p.fault(at)
        assert seen(eng) == want[name], (name, k)
        assert want["allowed"] != 1  # the hook was asked
    assert mm.hooks.stats()["hugepage"]["fallbacks"] == 0


def test_a_detached_placement_program_is_not_called():
    mm = MM(MachineSpec((NodeSpec(1 << 16), NodeSpec(1 << 16))))
    eng = attach(mm, "placement", reader("placement", 8, 4), "jit")  # pid
    p = mm.spawn(home_node=1)
    va = p.mmap(1 << 20, "none")
    p.fault(va)
    assert seen(eng) == p.pid and "hook_placement" in vars(mm)
    mm.hooks.detach("placement")
    q = mm.spawn(home_node=1)
    vb = q.mmap(1 << 20, "none")
    pfn = q.fault(vb)
    assert seen(eng) == p.pid  # not run for q
    assert mm.hooks.stats()["placement"]["calls"] == 1
    assert "hook_placement" not in vars(mm)
    node = mm.phys.nodes[1]
    assert node.start <= pfn < node.end  # q's home node, the built-in choice


def test_a_program_verified_for_another_hook_gets_every_field():
    mm = MM(MachineSpec((NodeSpec(1 << 16),)))
    helpers = policy_helpers()
    text = ".hook hugepage\n    r0 = *(u32 *)(r1 + 4)\n    r0 &= 1\n    exit\n"
    loaded = load(assemble(text, helpers=helpers), helpers=helpers, hook=HUGEPAGE)
    assert loaded.engine.ctx_hook == "hugepage"
    mm.hooks.attach("placement", loaded.engine)
    assert mm.hooks.points["placement"].reads is None
    mm.hooks.attach("hugepage", loaded.engine)
    assert mm.hooks.points["hugepage"].reads == {"allowed"}
