"""The user-space trainer of the learned page table (``programs/learned_pt.s``).

Like Contiguitas' user-space agent, it runs outside the programs: it takes
every mapping of a process, fits integer piecewise-linear models of "where
does the PTE of this virtual page live", and writes the models, a directory
over them and every PTE into the region (layout in the program's header
comment and the constants below).  The programs only read the models:
``pt_map`` inserts a new page into its predicted window (two cache lines)
and gives up when the window is full, which makes the host refit.

Fitting: pages sorted by virtual address are cut into runs wherever the
gap to the previous page exceeds ``gap`` pages (so each VMA, or each dense
piece of one, gets its own model); with more runs than segment records the
smallest gaps are merged.  Each run gets slot lines in proportion to its
pages times a spread factor (spare room for pages mapped later), plus
``growth`` of its address span beyond its last page (so a VMA filled in
address order keeps landing in reserved lines).  The slope maps the run's
extended span onto its lines.  Pages are then placed by :meth:`Model.line`,
which computes exactly what the programs compute; a run whose window
overflows is split in two and the fit is redone.

This module does not run programs; :mod:`mmcore.pagetables.progpt` calls ``fit`` when a
refit is due (``stale``) or when ``pt_map`` found no room.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mmcore.constants import PAGE_SIZE_ORDERS
from mmcore.pagetables.progpt import LINE, PtDesign

DIR_OFF, DIR_N = 64, 512  # 512 buckets, 513 entries
SEG_OFF, SEG_MAX, SEG_SIZE = 1152, 512, 32
SLOT_LINE0 = 274  # first slot line; everything below is metadata
META_END = SLOT_LINE0 * LINE
HDR = struct.Struct("<QQQQQQQ")  # counts x3, meta_end, nseg, dir base, dir shift
SEG = struct.Struct("<QQQQ")  # first vpn, span, first line, slope (16.16)
SLOT = struct.Struct("<QQ")  # tag, PTE
SEARCH_STEPS = 10  # binary-search iterations (enough for SEG_MAX segments)
WINDOW_LINES = 2
SLOTS_PER_LINE = LINE // SLOT.size
U64 = (1 << 64) - 1


def tag_of(vpn: int, code: int) -> int:
    return (vpn << 4) | (code << 2) | 2


@dataclass(frozen=True)
class Segment:
    lo: int  # first vpn
    span: int  # pages covered by the model beyond lo
    base: int  # first slot line
    slope: int  # lines per page, 16.16 fixed point


@dataclass
class Model:
    """Segments plus the directory: what the programs read from the header."""

    segments: list[Segment]
    dir_lo: int
    dir_shift: int
    directory: list[int]

    @classmethod
    def build(cls, segments: list[Segment]) -> Model:
        segments = segments or [Segment(0, 0, SLOT_LINE0, 0)]
        lo = segments[0].lo
        extent = segments[-1].lo + segments[-1].span - lo
        shift = 0
        while extent >> shift >= DIR_N:
            shift += 1
        directory, g = [], 0
        for i in range(DIR_N):
            start = lo + (i << shift)
            while g + 1 < len(segments) and segments[g + 1].lo <= start:
                g += 1
            directory.append(g)
        directory.append(len(segments) - 1)
        return cls(segments, lo, shift, directory)

    def segment(self, k: int) -> int:
        """The last segment starting at or before ``k`` (else the first)."""
        i = min((k - self.dir_lo) >> self.dir_shift if k >= self.dir_lo else 0, DIR_N - 1)
        lo, hi = min(self.directory[i], SEG_MAX - 1), self.directory[i + 1]
        segs = self.segments
        for _ in range(SEARCH_STEPS):
            if lo >= hi or hi > SEG_MAX - 1:
                break
            mid = (lo + hi + 1) >> 1
            if segs[mid].lo > k:
                hi = mid - 1
            else:
                lo = mid
        return lo

    def line(self, k: int, last: int) -> int:
        """The window's first line for key vpn ``k`` (``last``: the last line
        a window may start at), as the programs compute it."""
        s = self.segments[self.segment(k)]
        d = min(k - s.lo if k >= s.lo else 0, s.span)
        line = (s.base + ((d * s.slope & U64) >> 16)) & U64
        return max(min(line, last), SLOT_LINE0)

    def write(self, buf: bytearray, counts: list[int]) -> None:
        HDR.pack_into(buf, 0, *counts, META_END, len(self.segments), self.dir_lo, self.dir_shift)
        struct.pack_into(f"<{DIR_N + 1}H", buf, DIR_OFF, *self.directory)
        for g, s in enumerate(self.segments):
            SEG.pack_into(buf, SEG_OFF + g * SEG_SIZE, s.lo, s.span, s.base, s.slope)


def last_window_line(nbytes: int) -> int:
    return nbytes // LINE - WINDOW_LINES


class LearnedTrainer:
    """Fits and writes the learned page table (see the module docstring)."""

    def __init__(self, gap: int = 64, spread: float = 2.0, growth: float = 0.5,
                 refit_share: float = 0.25, min_refit: int = 32) -> None:
        self.gap, self.spread, self.growth = gap, spread, growth
        self.refit_share, self.min_refit = refit_share, min_refit
        self.fits = 0
        self.splits = 0
        self.model: Model | None = None  # the last model written

    def stale(self, mapped: int, changes: int) -> bool:
        return changes > max(self.min_refit, self.refit_share * mapped)

    def read(self, buf: bytearray) -> list[tuple[int, int, int]]:
        """Every (vpn, size code, PTE) stored in ``buf``'s slot lines."""
        out = []
        for tag, pte in SLOT.iter_unpack(memoryview(buf)[META_END:]):
            if tag:
                out.append((tag >> 4, (tag >> 2) & 3, pte))
        return out

    # -- fitting ---------------------------------------------------------------
    def _runs(self, keys: list[tuple[int, int, int]]) -> list[list[tuple[int, int, int]]]:
        if not keys:
            return []
        ends = [vpn + (1 << PAGE_SIZE_ORDERS[code]) for vpn, code, _ in keys]
        gaps = [(keys[i][0] - ends[i - 1], i) for i in range(1, len(keys))]
        cuts = sorted(i for g, i in gaps if g > self.gap)
        if len(cuts) >= SEG_MAX:
            cuts = sorted(i for _, i in sorted(gaps, reverse=True)[:SEG_MAX - 1])
        bounds = [0, *cuts, len(keys)]
        return [keys[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]

    def _segments(self, runs: list[list[tuple[int, int, int]]], lines: int) -> list[Segment]:
        """Lay the runs out over ``lines`` slot lines; [] when they cannot fit."""
        need = [len(r) * (1 + self.growth) / SLOTS_PER_LINE for r in runs]
        fixed = WINDOW_LINES * len(runs)
        room = lines - fixed
        if room < sum(len(r) for r in runs) / SLOTS_PER_LINE or not runs:
            return [] if runs else [Segment(0, 0, SLOT_LINE0, 0)]
        spread = min(self.spread, room / max(sum(need), 1e-9))
        out, base = [], SLOT_LINE0
        for run, want in zip(runs, need, strict=True):
            lo = run[0][0]
            last = run[-1][0] + (1 << PAGE_SIZE_ORDERS[run[-1][1]]) - 1
            span = max(last - lo, 1)
            span += max(16, int(span * self.growth))
            nlines = max(1, int(want * spread))
            slope = min((nlines << 16) // span, 1 << 16)
            out.append(Segment(lo, span, base, slope))
            base += nlines + WINDOW_LINES - 1
        return out

    def fit(self, buf: bytearray, entries: list[tuple[int, int, int]]) -> bool:
        """Write a table holding ``entries`` into ``buf`` (already zeroed past
        the header); False when they do not fit."""
        self.fits += 1
        keys = sorted(entries)
        last = last_window_line(len(buf))
        lines = last + WINDOW_LINES - SLOT_LINE0
        runs = self._runs(keys)
        for _ in range(64):
            segs = self._segments(runs, lines)
            if not segs:
                return False
            model = Model.build(segs)
            bad = self._place(model, keys, last, buf)
            if bad is None:
                counts = [0, 0, 0]
                for _, code, _ in keys:
                    counts[code] += 1
                model.write(buf, counts)
                self.model = model
                return True
            memoryview(buf)[META_END:] = bytes(len(buf) - META_END)
            runs = self._split(runs, bad)
            if runs is None:
                return False
        return False

    def _place(self, model: Model, keys: list[tuple[int, int, int]], last: int,
               buf: bytearray) -> int | None:
        """Put every key in its window; the first key that finds none full, else None."""
        for vpn, code, pte in keys:
            line = model.line(vpn, last)
            off = line * LINE
            for slot in range(off, off + WINDOW_LINES * LINE, SLOT.size):
                if not SLOT.unpack_from(buf, slot)[0]:
                    SLOT.pack_into(buf, slot, tag_of(vpn, code), pte)
                    break
            else:
                return vpn
        return None

    def _split(self, runs: list[list[tuple[int, int, int]]],
               vpn: int) -> list[list[tuple[int, int, int]]] | None:
        """Split the run holding ``vpn`` at its middle (None when it cannot be)."""
        if len(runs) >= SEG_MAX:
            return None
        for i, run in enumerate(runs):
            if run[0][0] <= vpn <= run[-1][0]:
                if len(run) < 2:
                    return None
                self.splits += 1
                mid = len(run) // 2
                return runs[:i] + [run[:mid], run[mid:]] + runs[i + 1:]
        return None


LEARNED = PtDesign(
    name="learned",
    capacity=lambda nbytes: max(nbytes - META_END, 0) // SLOT.size,
    max_load=0.5,
    min_pages=5,
    meta_end=lambda nbytes: META_END,
    trainer=LearnedTrainer,
)
