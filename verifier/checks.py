"""Preconditions and the one checker that reports them.

A precondition is an object (:class:`Init`, :class:`TypeIs`,
:class:`Bounded`, :class:`Holds`) that can tell whether it holds in a state
and, when it does not, what the state would be had it held.  The
:class:`Checker` evaluates preconditions for the instruction being analysed:
a failure goes through :meth:`Checker.reject` (the single place where
rejections are made) and the precondition is then *assumed*, so that one
error does not cascade into many.  Transfer functions compute effects only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from verifier.domains.state import State
from verifier.domains.values import K_MAP, K_PTR, K_SCALAR, K_TOP, K_UNINIT, UNKNOWN, K, Val

MAX_VAR_OFF = 1 << 29  # the kernel's BPF_MAX_VAR_OFF: pointer offsets stay within +-2**29


@dataclass(frozen=True)
class Problem:
    """One failed precondition: the pc, the sentence, the registers involved."""

    pc: int
    message: str
    regs: tuple[int, ...]
    state: str


class Pre:
    """A precondition on the state before an instruction."""

    regs: tuple[int, ...] = ()

    def failure(self, state: State) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def assume(self, state: State) -> State:
        return state


@dataclass
class Init(Pre):
    """Register ``reg`` has been written on every path."""

    reg: int

    @property
    def regs(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.reg,)

    def failure(self, state: State) -> str | None:
        if state.reg(self.reg).kind is K_UNINIT:
            return f"read of uninitialised register r{self.reg}"
        return None

    def assume(self, state: State) -> State:
        return state.set_reg(self.reg, UNKNOWN)


@dataclass
class TypeIs(Pre):
    """Register ``reg`` has one of ``kinds``; ``message`` may use {r} and {type}."""

    reg: int
    kinds: frozenset[K]
    message: str

    @property
    def regs(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.reg,)

    def failure(self, state: State) -> str | None:
        v = state.reg(self.reg)
        if v.kind in self.kinds:
            return None
        return self.message.format(r=f"r{self.reg}", type=v.type_name())

    def assume(self, state: State) -> State:
        return state.set_reg(self.reg, UNKNOWN)


SCALAR = frozenset({K_SCALAR})


@dataclass
class Bounded(Pre):
    """Scalar ``reg`` lies within +-2**29 (pointer arithmetic operand)."""

    reg: int
    dst: int

    @property
    def regs(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.dst, self.reg)

    def failure(self, state: State) -> str | None:
        v = state.reg(self.reg)
        assert v.num is not None
        if -MAX_VAR_OFF <= v.num.smin and v.num.smax <= MAX_VAR_OFF:
            return None
        return (f"pointer arithmetic on r{self.dst} with unbounded r{self.reg} "
                f"(its value must lie within +-{MAX_VAR_OFF})")


@dataclass
class Holds(Pre):
    """A condition the caller evaluated itself (memory bounds, helper
    arguments...): ``message`` is None when it holds."""

    message: str | None
    regs: tuple[int, ...] = field(default=())

    def failure(self, state: State) -> str | None:
        return self.message


class Checker:
    """Evaluates preconditions at one instruction; collects problems."""

    def __init__(self, describe: object) -> None:
        self.problems: list[Problem] = []
        self._describe = describe  # (state, regs) -> str
        self.pc = 0

    def reject(self, message: str, state: State | None, regs: tuple[int, ...] = ()) -> None:
        """The single way a rejection is made."""
        text = self._describe(state, regs) if state is not None else ""  # type: ignore
        self.problems.append(Problem(self.pc, message, regs, text))

    def require(self, state: State, pre: Pre) -> State:
        """``state`` if ``pre`` holds; else report it and assume it."""
        msg = pre.failure(state)
        if msg is None:
            return state
        self.reject(msg, state, pre.regs)
        return pre.assume(state)

    def init(self, state: State, *regs: int) -> State:
        for r in regs:
            if state.frames[-1].regs[r].kind is K_UNINIT:
                state = self.require(state, Init(r))
        return state

    def scalar(self, state: State, reg: int, message: str) -> State:
        return self.require(state, TypeIs(reg, SCALAR, message))

    def holds(self, state: State, message: str | None, *regs: int) -> bool:
        if message is None:
            return True
        self.reject(message, state, regs)
        return False


def is_pointerish(v: Val) -> bool:
    """Could hold an address (pointer, map handle, or mixed)."""
    return v.kind in (K_PTR, K_MAP, K_TOP)
