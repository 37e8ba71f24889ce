"""What the verifier tells its caller: verdict, diagnostics, facts, logs.

A :class:`Diagnostic` reads ``prog.s:LINE: pc N: reason`` followed by the
instruction and the abstract values of the registers involved, like the
kernel's verifier log.  :class:`Facts` keeps, per pc, the register values
proven on entry (joined over call sites), the kind of object each memory
instruction touches, each loop's ranking register and trip bound (head
visits per entry, the largest over call sites), and ``max_insns``, a bound
of the instructions one run executes;
:meth:`Facts.check` tells whether concrete register values agree with them
(the fuzzer's oracle).  :func:`render_state` formats an abstract state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bpfvm.program import SourceLoc
from verifier.domains.interval import describe
from verifier.domains.state import State
from verifier.domains.values import K_SCALAR, K_UNINIT, Val


@dataclass(frozen=True)
class Diagnostic:
    pc: int
    loc: SourceLoc | None
    message: str
    state: str = ""
    insn: str = ""

    @property
    def headline(self) -> str:
        return f"{self.loc}: pc {self.pc}: {self.message}" if self.loc else \
            f"pc {self.pc}: {self.message}"

    def __str__(self) -> str:
        lines = [self.headline]
        if self.loc is not None and self.loc.text:
            lines.append(f"    {self.loc.text}")
        if self.insn:
            lines.append(f"    {self.insn}")
        if self.state:
            lines.append(f"    {self.state}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"pc": self.pc, "file": self.loc.file if self.loc else None,
                "line": self.loc.line if self.loc else None, "message": self.message,
                "insn": self.insn, "state": self.state}


def render_regs(state: State, regs: Sequence[int] = ()) -> str:
    """``r1=ptr_to_ctx(off=0) r2=scalar(umax=63,...)``; every initialised
    register when ``regs`` is empty."""
    vals = state.regs
    chosen = regs or [r for r in range(len(vals)) if vals[r].kind is not K_UNINIT]
    return " ".join(f"r{r}={vals[r].describe()}" for r in dict.fromkeys(chosen))


def render_state(state: State) -> str:
    text = render_regs(state)
    stack = state.frames[-1].stack.describe()
    depth = f" [frame {state.depth}]" if state.depth else ""
    return f"{text}{' ' + stack if stack else ''}{depth}"


@dataclass
class Facts:
    """Per-pc knowledge an engine may use, proven for every run."""

    regs: dict[int, tuple[Val, ...]] = field(default_factory=dict)
    memory: dict[int, str] = field(default_factory=dict)  # pc -> object kind accessed
    loops: dict[int, tuple[str, int | None]] = field(default_factory=dict)  # head -> (reg, trips)
    max_insns: int = 0  # at most this many instructions run (local calls and loops included)
    # (offset, size) of every context field a load may read; None: not known
    # (a load whose offset is not constant), so any field may be read
    ctx_reads: frozenset[tuple[int, int]] | None = None

    def reg(self, pc: int, r: int) -> Val | None:
        vals = self.regs.get(pc)
        return vals[r] if vals else None

    def check(self, pc: int, regs: Sequence[int]) -> str | None:
        """None when the concrete ``regs`` (r0..r10 at entry to ``pc``) fit
        the claimed scalar bounds, else what does not."""
        vals = self.regs.get(pc)
        if vals is None:
            return f"pc {pc}: claimed unreachable, but reached"
        for r, (v, x) in enumerate(zip(vals, regs, strict=False)):
            if v.kind is K_SCALAR and v.num is not None and not v.num.contains(x):
                return (f"pc {pc}: r{r} = {x & ((1 << 64) - 1):#x} is outside the claimed "
                        f"{describe(v.num)}")
        return None

    def in_bounds(self, pc: int) -> bool:
        """True when the memory access at ``pc`` was proven inside its object."""
        return pc in self.memory


@dataclass
class Verdict:
    accepted: bool
    diagnostics: list[Diagnostic]
    facts: Facts | None
    stats: dict = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.accepted

    def summary(self) -> str:
        if self.accepted:
            return "accepted"
        return "\n".join(str(d) for d in self.diagnostics)

    def to_json(self) -> dict:
        return {"accepted": self.accepted, "diagnostics": [d.to_json() for d in self.diagnostics],
                "stats": self.stats, "log": self.log}
