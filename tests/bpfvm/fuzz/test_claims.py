"""The verifier's range claims as run-time checks: the table check and the
compiled check of a hot pc say exactly what ``Scalar.contains`` says."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

pytest.importorskip("verifier")

from bpfvm.fuzz.builder import Case, Target, ins  # noqa: E402
from bpfvm.fuzz.claims import range_checker, specialized  # noqa: E402
from bpfvm.fuzz.execute import HOT  # noqa: E402
from bpfvm.fuzz.oracles import Oracles  # noqa: E402
from bpfvm.program import Program  # noqa: E402
from verifier.domains.interval import Scalar, make  # noqa: E402
from verifier.domains.tnum import Tnum  # noqa: E402
from verifier.domains.values import scalar  # noqa: E402
from verifier.report import Facts  # noqa: E402

M64 = (1 << 64) - 1
EDGES = (0, 1, 0x7F, 0x80, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, (1 << 63) - 1,
         1 << 63, M64, M64 - 1)


def scalars(rng: random.Random) -> list[Scalar]:
    out = []
    for _ in range(60):
        a, b = sorted(rng.choice((rng.getrandbits(64), rng.choice(EDGES))) for _ in range(2))
        out.append(Scalar.urange(a, b))
        lo, hi = sorted(rng.randint(-(1 << 40), 1 << 40) for _ in range(2))
        out.append(Scalar.srange(lo, hi))
        out.append(Scalar.const(rng.choice(EDGES)))
        mask = rng.getrandbits(64) & rng.getrandbits(64)
        t = make(Tnum(rng.getrandbits(64) & ~mask, mask))
        if t is not None:
            out.append(t)
        low = make(Tnum(0, M64), 0, M64, -(1 << 63), (1 << 63) - 1, 5, 1000, 5, 1000)
        if low is not None:
            out.append(low)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_table_and_compiled_checks_agree_with_contains(seed: int) -> None:
    rng = random.Random(seed)
    for num in scalars(rng):
        check = range_checker(Facts(regs={0: (scalar(num),)}))
        claims = check.claims[0]
        probe = SimpleNamespace(violation=None)
        regs = [0]
        step = specialized(0, claims, lambda: 7, regs, probe, check.full)
        values = [*EDGES, num.umin, num.umax, num.umin - 1, num.umax + 1,
                  num.smin & M64, num.smax & M64, rng.getrandbits(64)]
        for x in values:
            x &= M64
            regs[0] = x
            probe.violation = None
            assert step() == 7
            inside = num.contains(x)
            assert (probe.violation is None) == inside, (x, num.key())
            assert (check(0, [x]) is None) == inside


def counting_loop_claiming(bound: int) -> tuple[Case, Facts]:
    """r0 counts to 1000; the facts claim r0 <= ``bound`` at the loop's add."""
    insns = [ins("mov64_k", 0, imm=0), ins("add64_k", 0, imm=1),
             ins("jlt64_k", 0, off=-2, imm=1000), ins("exit")]
    anything = (scalar(Scalar.unknown()),)
    facts = Facts(regs={0: anything, 1: (scalar(Scalar.urange(0, bound)),), 2: anything,
                        3: anything})
    return Case(Program(insns), Target(None, 8)), facts


def test_claims_at_a_hot_pc_are_still_checked() -> None:
    bound = HOT + 50  # broken only after the pc got its compiled check
    case, facts = counting_loop_claiming(bound)
    verdict = SimpleNamespace(accepted=True, facts=facts, diagnostics=[])
    out = Oracles(verifier=lambda p, h, **kw: verdict).check(case, random.Random(1))
    assert out.finding is not None and out.finding.oracle == "range"
    assert f"r0 = {bound + 1:#x} is outside" in out.finding.message
    case, facts = counting_loop_claiming(999)
    verdict = SimpleNamespace(accepted=True, facts=facts, diagnostics=[])
    assert Oracles(verifier=lambda p, h, **kw: verdict).check(
        case, random.Random(1)).finding is None
