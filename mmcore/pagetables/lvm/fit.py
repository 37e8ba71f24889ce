"""Training the LVM-like index: cutting keys into leaves and fitting a
gapped leaf (host side, as LVM trains in the OS).

A leaf over sorted keys gets ``gap`` slots per key over its span extended
by ``growth`` (room for the pages mapped next), a slope mapping that
extended span onto its slots, and its keys placed, in key order, at the
first free slot of :func:`~.index.probe_order` within ``ERR_MAX`` of the
prediction; its error bound is the farthest placement (at least
``err_min``, so that most insertions find a free slot in their window).
A leaf whose keys cannot all be placed, or that would need more than
``max_slots``, is split at its largest gap between keys and both halves
are fitted again.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmcore.constants import PAGE_SIZE_ORDERS
from mmcore.pagetables.lvm.index import ERR_MAX, LEAF_SLOPE_MASK, LeafModel, tag_of

Key = tuple[int, int, int]  # vpn, size code, PTE


@dataclass(frozen=True)
class FitConfig:
    gap: float = 1.5  # slots per key
    growth: float = 0.25  # span beyond the last key a leaf reserves
    err_min: int = 1
    min_slots: int = 8
    gap_cut: int = 64  # pages: a wider hole between keys starts a new leaf at a full build


@dataclass
class FittedLeaf:
    model: LeafModel
    first: int  # first key (vpn)
    slots: dict[int, tuple[int, int]]  # slot -> (tag, PTE)


def _end(key: Key) -> int:
    return key[0] + (1 << PAGE_SIZE_ORDERS[key[1]])


def fit_leaf(keys: list[Key], cfg: FitConfig, max_slots: int, lo: int = 0) -> FittedLeaf | None:
    """One gapped leaf for sorted ``keys``; None when they do not fit in one."""
    if not keys:
        return FittedLeaf(LeafModel(lo, 0, ERR_MAX, cfg.min_slots), lo, {})
    lo = keys[0][0]
    span = _end(keys[-1]) - lo
    ext = span + max(16, int(span * cfg.growth))
    slots = max(cfg.min_slots, -(-int(cfg.gap * len(keys) * ext) // span))
    if slots > max_slots:
        if len(keys) * cfg.gap > max_slots:
            return None
        slots = max_slots
    model = LeafModel(lo, min((slots << 16) // ext, LEAF_SLOPE_MASK), ERR_MAX, slots)
    placed: dict[int, tuple[int, int]] = {}
    worst = 0
    for vpn, code, pte in keys:
        pos = model.predict(vpn)
        for s in model.probes(vpn):
            if s not in placed:
                placed[s] = (tag_of(vpn, code), pte)
                worst = max(worst, abs(s - pos))
                break
        else:
            return None
    model.err = max(cfg.err_min, worst)
    return FittedLeaf(model, lo, placed)


def fit_keys(keys: list[Key], cfg: FitConfig, max_slots: int, lo: int = 0) -> list[FittedLeaf]:
    """Leaves for sorted ``keys``, splitting where one leaf does not do."""
    leaf = fit_leaf(keys, cfg, max_slots, lo)
    if leaf is not None:
        return [leaf]
    if len(keys) < 2:
        raise ValueError("a single key does not fit in a leaf")
    gaps = [(keys[i][0] - _end(keys[i - 1]), i) for i in range(1, len(keys))]
    widest, at = max(gaps)
    cut = at if widest > 0 else len(keys) // 2
    return fit_keys(keys[:cut], cfg, max_slots, lo) + fit_keys(keys[cut:], cfg, max_slots)


def partition(keys: list[Key], cfg: FitConfig, max_keys: int, pieces: int) -> list[list[Key]]:
    """Sorted ``keys`` cut at holes wider than ``gap_cut`` pages and every
    ``max_keys`` keys, keeping at most ``pieces`` pieces (the narrowest
    holes are not cut then)."""
    if not keys:
        return [[]]
    gaps = sorted(((keys[i][0] - _end(keys[i - 1]), i) for i in range(1, len(keys))
                   if keys[i][0] - _end(keys[i - 1]) > cfg.gap_cut), reverse=True)
    cuts = sorted(i for _, i in gaps[:max(pieces - 1, 0)])
    out, start = [], 0
    for cut in [*cuts, len(keys)]:
        while cut - start > max_keys:
            out.append(keys[start:start + max_keys])
            start += max_keys
        out.append(keys[start:cut])
        start = cut
    return [p for p in out if p]
