"""The compiled placement call against the Python one: the same nodes,
the same context bytes, the same counts, through attaches, detaches,
faults, refusals and a tiered engine's move to the JIT."""

from __future__ import annotations

import gc
import os
import random

import pytest

from bpfvm.asm.assembler import assemble
from bpfvm.engine import Tiered
from bpfvm.jit.engine import Jit
from bpfvm.load import load
from mmcore.hooks import placement_native
from mmcore.hooks.host import MmEnv, policy_helpers
from mmcore.hooks.specs import HOOKS, PLACEMENT
from mmcore.mm import MM
from mmcore.phys.physmem import MachineSpec, NodeSpec

pytestmark = pytest.mark.skipif(
    os.environ.get("BPFVM_NATIVE", "1") == "0" or placement_native._method() is None,
    reason="BPFVM_NATIVE=0 (or no CPython C API): the placement call is Python only")

OFF = {f.name: f.offset for f in PLACEMENT.fields}
# every field mixed into r0 = mix % MOD: a node or, with 3 nodes, node 3
# that does not exist (refused); unverified, mod 6 also goes past the
# hook's range (a fallback)
MIXER = f""".hook placement
    r0 = *(u32 *)(r1 + {OFF['order']})
    r2 = *(u32 *)(r1 + {OFF['pid']})
    r0 += r2
    r2 = *(u32 *)(r1 + {OFF['home_node']})
    r0 += r2
    r2 = *(u32 *)(r1 + {OFF['hint']})
    r0 += r2
    r2 = *(u64 *)(r1 + {OFF['free_node0']})
    r0 += r2
    r2 = *(u64 *)(r1 + {OFF['free_node1']})
    r2 >>= 3
    r0 += r2
    r0 %= MOD
    exit
"""
HOME = f".hook placement\n    r0 = *(u32 *)(r1 + {OFF['home_node']})\n    r0 &= 3\n    exit\n"


def machine() -> MM:
    return MM(MachineSpec((NodeSpec(1 << 15), NodeSpec(1 << 15), NodeSpec(1 << 14))))


def attach(mm: MM, text: str, engine: str, verify: bool = True):
    helpers = policy_helpers()
    if not verify:
        eng = Jit(assemble(text, helpers=helpers), helpers, env=MmEnv(mm))
        mm.hooks.attach("placement", eng)
        return eng
    eng = load(assemble(text, helpers=helpers), engine=engine, helpers=helpers,
               hook=HOOKS["placement"], env=MmEnv(mm)).engine
    mm.hooks.attach("placement", eng)
    return eng


def python_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mmcore.mm.native_placement_call", lambda *a: None)


def run(mm: MM, seed: int, faults: int = 600) -> list[tuple[int, bytes]]:
    """Random 4 KiB and 2 MiB faults of a few processes: each fault's pfn and
    the context bytes after it."""
    rng = random.Random(seed)
    procs = []
    for k in range(4):
        p = mm.spawn(home_node=k % 3)
        procs.append((p, p.mmap(64 << 20, "thp", hint=rng.randrange(1001)),
                      p.mmap(16 << 20, "none", hint=rng.randrange(1 << 32))))
    out = []
    for _ in range(faults):
        p, thp, small = rng.choice(procs)
        va = thp + rng.randrange(64 << 20) if rng.random() < 0.2 else \
            small + rng.randrange(16 << 20)
        out.append((p.fault(va & ~4095), bytes(mm._placement.ctx)))
    return out


def stats(mm: MM) -> dict:
    return dict(mm.hooks.stats()["placement"])


def test_a_jit_program_gets_the_compiled_call_and_the_interpreter_the_python_one():
    mm = machine()
    attach(mm, HOME, "jit")
    p = mm.spawn(home_node=2)
    p.fault(p.mmap(1 << 20, "none"))
    assert type(vars(mm)["hook_placement"]).__name__ == "builtin_function_or_method"
    attach(mm, HOME, "interp")
    p.fault(p.mmap(1 << 20, "none"))
    assert type(vars(mm)["hook_placement"]).__name__ == "function"


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_compiled_and_python_calls_agree_fault_by_fault(seed, verify, monkeypatch):
    text = MIXER.replace("MOD", "4" if verify else "6")
    native = machine()
    attach(native, text, "jit", verify)
    got = run(native, seed)
    assert type(vars(native)["hook_placement"]).__name__ == "builtin_function_or_method"
    python_only(monkeypatch)
    plain = machine()
    attach(plain, text, "jit", verify)
    want = run(plain, seed)
    assert type(vars(plain)["hook_placement"]).__name__ == "function"
    assert got == want
    assert stats(native) == stats(plain)
    s = stats(native)
    # the mix reached real nodes, a missing node and past the range
    assert 0 < s["fallbacks"] < s["calls"] and s["errors"] == 0


def test_a_new_program_replaces_the_compiled_call_and_a_detach_ends_it():
    mm = machine()
    attach(mm, HOME, "jit")
    p = mm.spawn(home_node=1)
    va = p.mmap(8 << 20, "none")
    p.fault(va)
    old = vars(mm)["hook_placement"]
    attach(mm, ".hook placement\n    r0 = 2\n    exit\n", "jit")
    pfn = p.fault(va + 4096)
    node2 = mm.phys.nodes[2]
    assert node2.start <= pfn < node2.end
    assert vars(mm)["hook_placement"] is not old
    mm.hooks.detach("placement")
    gc.collect()  # the first program's engine and its row may be gone now
    # a call kept from before goes back to the MM core's own, which sees no program
    assert old(p, p.find_vma(va), 0) == 1
    assert "hook_placement" not in vars(mm)
    assert stats(mm)["calls"] == 2


def test_a_tiered_engine_moves_to_the_compiled_call_counting_every_call():
    mm = machine()
    eng = attach(mm, HOME, "auto")
    assert isinstance(eng, Tiered)
    eng.after = 50
    p = mm.spawn(home_node=1)
    va = p.mmap(4 << 20, "none")
    node1 = mm.phys.nodes[1]
    for i in range(120):
        pfn = p.fault(va + i * 4096)
        assert node1.start <= pfn < node1.end
    assert eng.tier == "jit"
    assert type(vars(mm)["hook_placement"]).__name__ == "builtin_function_or_method"
    assert stats(mm)["calls"] == 120 and stats(mm)["fallbacks"] == 0


def test_a_faulting_program_is_a_counted_fallback_to_the_home_node():
    mm = machine()
    # past the context: unverified, so the checked JIT faults at run time
    mm.hooks.attach("placement", Jit(assemble("r0 = *(u64 *)(r1 + 4096)\nexit\n"),
                                     policy_helpers(), checked=True))
    p = mm.spawn(home_node=2)
    va = p.mmap(1 << 20, "none")
    for i in range(3):
        pfn = p.fault(va + i * 4096)
        assert mm.phys.nodes[2].start <= pfn < mm.phys.nodes[2].end
    s = stats(mm)
    assert type(vars(mm)["hook_placement"]).__name__ == "builtin_function_or_method"
    assert (s["calls"], s["fallbacks"], s["errors"]) == (3, 3, 3)
    assert "invalid read" in s["last_error"]


def test_bad_arguments_raise_cleanly():
    mm = machine()
    attach(mm, MIXER.replace("MOD", "4"), "jit")
    p = mm.spawn(home_node=0)
    va = p.mmap(1 << 20, "none")
    p.fault(va)
    call = vars(mm)["hook_placement"]
    vma = p.find_vma(va)
    with pytest.raises(AttributeError):
        call(object(), vma, 0)
    with pytest.raises(AttributeError):
        call(p, object(), 0)
    with pytest.raises(TypeError):
        call(p, vma, "nine")
    assert call(p, vma, 0) in range(3)  # and it goes on working: a node of the machine


@pytest.mark.parametrize("native", [True, False])
def test_a_call_kept_from_an_earlier_program_never_runs_it(native, monkeypatch):
    if not native:
        python_only(monkeypatch)
    mm = machine()
    first = attach(mm, ".hook placement\n    r0 = 2\n    exit\n", "jit")  # noqa: F841 (alive)
    p = mm.spawn(home_node=0)
    va = p.mmap(8 << 20, "none")
    p.fault(va)
    kept = vars(mm)["hook_placement"]
    attach(mm, ".hook placement\n    r0 = 1\n    exit\n", "jit")
    p.fault(va + 4096)  # the new program's call is made: the hook point is no longer stale
    assert not mm._placement.stale
    assert kept(p, p.find_vma(va), 0) == 1  # handed to the new one, not the first program
