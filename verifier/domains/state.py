"""The abstract machine state: registers and stack of every active frame.

A :class:`State` is a tuple of :class:`Frame` (the caller's first); each
frame has eleven register values and a :class:`Stack`.  A stack keeps one
bit per byte (initialised or not, as one Python int over the 512 bytes) and
the registers spilled into it, by offset, with their full type, so a spill
and its fill give back the same value.  States are immutable; updates make
new objects sharing what did not change.  Join and widen are pointwise.
"""

from __future__ import annotations

from verifier.domains.interval import Thresholds
from verifier.domains.values import K_PTR, K_SCALAR, K_UNINIT, UNINIT, K, Val

STACK_SIZE = 512
NREGS = 11
_ALL = (1 << STACK_SIZE) - 1
_new = object.__new__


def _bits(off: int, size: int) -> int:
    """Init-mask bits of the bytes ``[off, off+size)`` (fp-relative offsets)."""
    return ((1 << size) - 1) << (off + STACK_SIZE)


class Stack:
    """Initialised bytes and spilled values of one frame (fp-relative offsets)."""

    __slots__ = ("init", "spills")

    def __init__(self, init: int = 0, spills: dict[int, tuple[int, Val]] | None = None) -> None:
        self.init = init
        self.spills = spills or {}

    def __eq__(self, o: object) -> bool:
        return isinstance(o, Stack) and self.init == o.init and self.spills == o.spills

    def is_init(self, off: int, size: int) -> bool:
        b = _bits(off, size)
        return self.init & b == b

    def overlapping(self, off: int, size: int) -> list[tuple[int, int, Val]]:
        if not self.spills:
            return []
        end = off + size
        return [(o, s, v) for o, (s, v) in self.spills.items() if o < end and off < o + s]

    def write(self, off: int, size: int, val: Val | None) -> Stack:
        """Store ``size`` bytes at ``off``; ``val`` is kept as a spill when given."""
        init = self.init
        spills = dict(self.spills)
        end = off + size
        for o, (s, v) in self.spills.items():  # overlapping(off, size), inline
            if o < end and off < o + s:
                del spills[o]
                if v.kind is not K_SCALAR:  # a clobbered pointer: its other bytes are garbage
                    init &= ~_bits(o, s)
        init |= ((1 << size) - 1) << (off + STACK_SIZE)  # _bits(off, size)
        if val is not None:
            spills[off] = (size, val)
        return Stack(init, spills)

    def forget(self, off: int, size: int) -> Stack:
        """Bytes ``[off, off+size)`` may have been written with unknown scalars
        (a variable-offset store): spills there are lost, init bits kept."""
        spills = dict(self.spills)
        init = self.init
        for o, s, v in self.overlapping(off, size):
            del spills[o]
            if v.kind is not K_SCALAR:
                init &= ~_bits(o, s)
        return Stack(init, spills)

    def join(self, o: Stack, th: Thresholds | None = None) -> Stack:
        if self is o:
            return self
        init = self.init & o.init
        spills: dict[int, tuple[int, Val]] = {}
        for off, (s, v) in self.spills.items():
            other = o.spills.get(off)
            if other is not None and other[0] == s:
                j = v.widen(other[1], th) if th is not None else v.join(other[1])
                spills[off] = (s, j)
            elif v.kind is not K_SCALAR:
                init &= ~_bits(off, s)
        for off, (s, v) in o.spills.items():
            mine = self.spills.get(off)
            if (mine is None or mine[0] != s) and v.kind is not K_SCALAR:
                init &= ~_bits(off, s)
        for off, (s, v) in list(spills.items()):
            if v.kind is K_UNINIT or not init & _bits(off, s) == _bits(off, s):
                del spills[off]
        return Stack(init, spills)

    def describe(self) -> str:
        parts = [f"fp{o}={v.describe()}" for o, (s, v) in sorted(self.spills.items())
                 if s == 8 or v.kind is not K_SCALAR]
        runs, i = [], 0
        mask = self.init
        while i < STACK_SIZE:
            if mask >> i & 1:
                j = i
                while j < STACK_SIZE and mask >> j & 1:
                    j += 1
                runs.append(f"[fp{i - STACK_SIZE},fp{j - STACK_SIZE})")
                i = j
            else:
                i += 1
        if runs:
            parts.append("init " + " ".join(runs))
        return " ".join(parts)


EMPTY_STACK = Stack()


class Frame:
    __slots__ = ("regs", "stack")

    def __init__(self, regs: tuple[Val, ...], stack: Stack) -> None:
        self.regs = regs
        self.stack = stack

    def __eq__(self, o: object) -> bool:
        return isinstance(o, Frame) and self.regs == o.regs and self.stack == o.stack


class State:
    """Frames of the active calls; the current one is ``frames[-1]``."""

    __slots__ = ("frames",)

    def __init__(self, frames: tuple[Frame, ...]) -> None:
        self.frames = frames

    def __eq__(self, o: object) -> bool:
        return isinstance(o, State) and self.frames == o.frames

    @property
    def regs(self) -> tuple[Val, ...]:
        return self.frames[-1].regs

    @property
    def depth(self) -> int:
        return len(self.frames) - 1

    def reg(self, r: int) -> Val:
        return self.frames[-1].regs[r]

    def set_reg(self, r: int, v: Val) -> State:
        frames = self.frames
        top = frames[-1]
        regs = list(top.regs)
        regs[r] = v
        f = _new(Frame)  # Frame(...) and State(...) without __init__ calls: the commonest update
        f.regs = tuple(regs)
        f.stack = top.stack
        s = _new(State)
        s.frames = (f,) if len(frames) == 1 else frames[:-1] + (f,)
        return s

    def set_regs(self, updates: dict[int, Val]) -> State:
        top = self.frames[-1]
        regs = list(top.regs)
        for i, v in updates.items():
            regs[i] = v
        return State(self.frames[:-1] + (Frame(tuple(regs), top.stack),))

    def stack(self, depth: int) -> Stack:
        return self.frames[depth].stack

    def set_stack(self, depth: int, stack: Stack) -> State:
        f = self.frames[depth]
        if len(self.frames) == 1:
            return State((Frame(f.regs, stack),))
        frames = list(self.frames)
        frames[depth] = Frame(f.regs, stack)
        return State(tuple(frames))

    def has_id(self, id: int) -> bool:
        """Some register or spill of some frame carries ``id`` (or a spill
        is uninitialised: :meth:`map_vals` would then change the state)."""
        for f in self.frames:
            for v in f.regs:
                if v.id == id:
                    return True
            for _s, v in f.stack.spills.values():
                if v.id == id or v.kind is K_UNINIT:
                    return True
        return False

    def map_vals(self, fn: object) -> State:
        """Apply ``fn(Val) -> Val`` to every register and spill of every frame."""
        frames = []
        for f in self.frames:
            regs = tuple([fn(v) for v in f.regs])  # type: ignore[operator]
            stack = f.stack
            spills = {}
            init = stack.init
            same = True
            for o, (s, v) in stack.spills.items():
                nv = fn(v)  # type: ignore[operator]
                if nv.kind is K_UNINIT:  # a dead value: its bytes are unreadable
                    init &= ~_bits(o, s)
                    same = False
                else:
                    spills[o] = (s, nv)
                    same = same and nv is v
            frames.append(Frame(regs, stack if same else Stack(init, spills)))
        return State(tuple(frames))

    def replace(self, kind: K, id: int, new: Val) -> State:
        """Every value of ``kind`` carrying ``id`` (registers and spills, all
        frames) becomes ``new``: ``map_vals`` with that function, written out
        (a refinement of linked copies runs at most conditional jumps)."""
        frames = []
        for f in self.frames:
            regs = tuple([new if v.id == id and v.kind is kind else v for v in f.regs])
            stack = f.stack
            spills = {}
            init = stack.init
            same = True
            for o, (s, v) in stack.spills.items():
                if v.id == id and v.kind is kind:
                    spills[o] = (s, new)
                    same = False
                elif v.kind is K_UNINIT:  # a dead value: its bytes are unreadable
                    init &= ~_bits(o, s)
                    same = False
                else:
                    spills[o] = (s, v)
            frames.append(Frame(regs, stack if same else Stack(init, spills)))
        return State(tuple(frames))

    def join(self, o: State, th: Thresholds | None = None) -> State:
        """Pointwise join (``th`` given: widen ``self`` by ``o``)."""
        if self is o:
            return self
        frames = []
        for a, b in zip(self.frames, o.frames, strict=True):
            if th is None:  # Val.join gives x back when y is x
                regs = tuple([x if x is y else x.join(y)
                              for x, y in zip(a.regs, b.regs, strict=True)])
            else:
                regs = tuple([x.widen(y, th) for x, y in zip(a.regs, b.regs, strict=True)])
            frames.append(Frame(regs, a.stack.join(b.stack, th)))
        joined = State(tuple(frames))
        if any(_unlinked(v) for f in frames for v in f.regs) \
                or any(_unlinked(v) for f in frames for _s, v in f.stack.spills.values()):
            return _relink(self, o, joined)
        return joined


def _unlinked(v: Val) -> bool:
    """A maybe-null pointer without an id or with a one-way one: perhaps a
    pointer joined with 0."""
    return v.kind is K_PTR and v.null and v.id <= 0


def _claim(x: Val, y: Val) -> tuple[int, int] | None:
    """``(side, id)`` when one of ``x`` (side 0), ``y`` (side 1) is a
    maybe-null pointer with ``id`` and the other the constant 0."""
    if x.kind is K_PTR and x.id > 0 and y.kind is K_SCALAR and y.num.is_const() \
            and y.num.value == 0:
        return 0, x.id
    if y.kind is K_PTR and y.id > 0 and x.kind is K_SCALAR and x.num.is_const() \
            and x.num.value == 0:
        return 1, y.id
    return None


def _relink(a: State, b: State, joined: State) -> State:
    """Give back, where that is sound, the id that :meth:`Val.join` drops
    from a maybe-null pointer joined with the constant 0.

    An id links values that are equal at run time, so that a null check on
    one refines all.  A join may keep a link only between values linked on
    *both* paths: a register that holds the lookup result on one path and
    0 on the other is not equal to the lookup result on the join (issue:
    its null check must not null the lookup result too).  Values that all
    carry id X on one path and all hold 0 on the other are equal on both
    paths, so they may share X in the join -- provided nothing else in the
    joined state carries X (the links of one id form one class).  A one-way
    link ``-X`` (:func:`~verifier.domains.values._one_way`) refers to the
    values that carried X on its own path, not to this new class: it is
    dropped."""
    groups: dict[tuple[int, int], list[tuple[int, int | None, int]]] = {}
    for d, (fa, fb, fj) in enumerate(zip(a.frames, b.frames, joined.frames, strict=True)):
        for r, v in enumerate(fj.regs):
            if _unlinked(v):
                key = _claim(fa.regs[r], fb.regs[r])
                if key is not None:
                    groups.setdefault(key, []).append((d, None, r))
        for off, (_s, v) in fj.stack.spills.items():
            if _unlinked(v):
                key = _claim(fa.stack.spills[off][1], fb.stack.spills[off][1])
                if key is not None:
                    groups.setdefault(key, []).append((d, off, 0))
    for (_side, id), where in sorted(groups.items()):
        if joined.has_id(id):  # taken by values linked on both paths, or another group
            continue
        if joined.has_id(-id):
            joined = joined.map_vals(lambda v, gone=-id: Val(v.kind, v.num, v.obj, v.null, 0)
                                     if v.id == gone else v)
        frames = list(joined.frames)
        for d, off, r in where:
            f = frames[d]
            if off is None:
                v = f.regs[r]
                regs = list(f.regs)
                regs[r] = Val(K_PTR, v.num, v.obj, True, id)
                frames[d] = Frame(tuple(regs), f.stack)
            else:
                size, v = f.stack.spills[off]
                spills = dict(f.stack.spills)
                spills[off] = (size, Val(K_PTR, v.num, v.obj, True, id))
                frames[d] = Frame(f.regs, Stack(f.stack.init, spills))
        joined = State(tuple(frames))
    return joined


def initial(regs: dict[int, Val]) -> State:
    return State((Frame(tuple([regs.get(i, UNINIT) for i in range(NREGS)]), EMPTY_STACK),))
