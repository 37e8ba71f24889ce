"""Concrete inputs, the interpreter probe and the contract checks of a run."""

from __future__ import annotations

import random

import pytest

from bpfvm.fuzz.builder import REGION_SIZE, Case, Target, ins, target_named
from bpfvm.fuzz.execute import (
    Executor,
    Probe,
    _changed_words,
    draw_input,
    range_checker,
    value_pool,
)
from bpfvm.interp.interpreter import Interpreter
from bpfvm.maps import make_maps
from bpfvm.program import Program
from bpfvm.stdhelpers import standard_helpers

EXIT = ins("exit")


def mem_case(*insns, size: int = 16) -> Case:
    return Case(Program(list(insns)), Target(None, size))


def test_value_pool_holds_constants_and_neighbours() -> None:
    pool = value_pool(mem_case(ins("jgt64_k", 1, off=0, imm=41), EXIT))
    assert {40, 41, 42, 43, 41 + (1 << 32), (-41) & ((1 << 64) - 1)} <= set(pool)


def test_inputs_are_deterministic_and_respect_layout() -> None:
    target = target_named("pt_map")
    case = Case(Program([EXIT]), target)
    pool = value_pool(case)
    a, b = (draw_input(case, random.Random(5), pool) for _ in range(2))
    assert a.ctx == b.ctx and a.region == b.region and len(a.ctx) == target.ctx_size
    off = target.hook.field_named("region_size").offset
    assert int.from_bytes(a.ctx[off:off + 8], "little") == REGION_SIZE


class Facts:
    """Claims r0 == 0 before pc 1; pc 2 claimed unreachable (no per-pc table)."""

    regs = None

    def check(self, pc, regs):
        if pc == 1 and regs[0]:
            return f"pc 1: r0 = {regs[0]:#x} is not 0"
        return None if pc in (0, 1) else f"pc {pc}: claimed unreachable, but reached"


def test_range_checker_uses_the_facts_message() -> None:
    check = range_checker(Facts())
    assert check(1, [0] * 11) is None
    assert check(1, [5] + [0] * 10) == "pc 1: r0 = 0x5 is not 0"
    assert "unreachable" in check(2, [0] * 11)
    assert range_checker(None) is None


def test_probe_puts_garbage_in_the_stack_only_on_request() -> None:
    case = mem_case(ins("ldxdw", 0, 10, -8), EXIT)
    vm = Interpreter(case.program, standard_helpers(), maps=make_maps([]))
    probe, runner = Probe(vm, None), Executor(vm, case)
    inp = draw_input(case, random.Random(1), value_pool(case))
    probe.garbage, probe.fresh = 0, True
    assert runner.run(inp).r0 == 0
    probe.garbage, probe.fresh = 0x1234, True
    assert runner.run(inp).r0 == 0x1234


def test_region_pointer_is_hidden_from_results() -> None:
    target = target_named("pt_lookup")
    off = target.hook.field_named("region").offset
    case = Case(Program([ins("ldxdw", 0, 1, off), EXIT], hook="pt_lookup"), target)
    vm = Interpreter(case.program, standard_helpers(), maps=make_maps([]))
    runner = Executor(vm, case)
    result = runner.run(draw_input(case, random.Random(2), value_pool(case)))
    assert result.r0 == 0 and result.ctx[off:off + 8] == bytes(8)
    assert len(result.region) == REGION_SIZE and runner.contract(
        draw_input(case, random.Random(2), value_pool(case))) is None


@pytest.mark.parametrize("seed", range(40))
def test_changed_words_are_every_changed_word_with_an_object_number(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice((8, 9, 24, 4096))
    old = rng.randbytes(size)
    data = bytearray(old)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(size - 7)
        data[at:at + 8] = (rng.randint(1, 6) << 32 | rng.getrandbits(32)).to_bytes(8, "little")
    data = bytes(data)
    highs = [n.to_bytes(4, "little") for n in (1, 2, 3)]
    changed = [i for i in range(size) if data[i] != old[i]]
    expected = [] if not changed else [
        w for i in range(max(0, changed[0] - 7), min(changed[-1], size - 8) + 1)
        if (w := int.from_bytes(data[i:i + 8], "little")) >> 32 in (1, 2, 3)]
    assert _changed_words(data, old, highs) == expected
