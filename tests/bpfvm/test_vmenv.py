"""The host environment: clock, seeded random numbers, bounded trace."""

from __future__ import annotations

from bpfvm.vmenv import StepClock, VmEnv

M64 = (1 << 64) - 1


def test_default_clock_is_deterministic() -> None:
    a, b = VmEnv(), VmEnv()
    assert [a.now_ns() for _ in range(3)] == [b.now_ns() for _ in range(3)] == [1000, 2000, 3000]


def test_step_clock() -> None:
    clock = StepClock(start=10, step=5)
    assert (clock(), clock()) == (15, 20)


def test_host_clock_is_truncated_to_64_bits() -> None:
    assert VmEnv(clock=lambda: -1).now_ns() == M64
    assert VmEnv(clock=lambda: 123).now_ns() == 123


def test_random_is_seeded_and_32_bit() -> None:
    def draws(seed: int) -> list[int]:
        env = VmEnv(seed=seed)
        return [env.random_u32() for _ in range(8)]

    assert draws(1) == draws(1) != draws(2)
    assert all(0 <= v < 1 << 32 for v in draws(3))


def test_trace_is_bounded() -> None:
    env = VmEnv(trace_limit=2)
    for i in range(5):
        env.emit(str(i))
    assert env.trace == ["0", "1"] and env.trace_dropped == 3
