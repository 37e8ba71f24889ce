"""Where the leaves' slot arrays live: several small regions of one size,
first fit, line-aligned extents; the first region starts with the index
(:data:`~.index.META_END` bytes)."""

from __future__ import annotations

from mmcore.pagetables.lvm.index import LINE, META_END


class Extents:
    """Free byte ranges of each region of ``size`` bytes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free: list[list[tuple[int, int]]] = []  # per region: (offset, bytes)

    def add_region(self) -> int:
        first = -(-META_END // LINE) * LINE if not self.free else 0
        self.free.append([(first, self.size - first)])
        return len(self.free) - 1

    def alloc(self, nbytes: int) -> tuple[int, int] | None:
        """(region, offset) of ``nbytes`` free bytes, or None."""
        for r, holes in enumerate(self.free):
            for i, (off, n) in enumerate(holes):
                if n >= nbytes:
                    holes[i] = (off + nbytes, n - nbytes)
                    return r, off
        return None

    def release(self, region: int, off: int, nbytes: int) -> None:
        holes = sorted([*self.free[region], (off, nbytes)])
        merged = [holes[0]]
        for o, n in holes[1:]:
            po, pn = merged[-1]
            if po + pn == o:
                merged[-1] = (po, pn + n)
            else:
                merged.append((o, n))
        self.free[region] = [h for h in merged if h[1]]

    def free_bytes(self) -> int:
        return sum(n for holes in self.free for _, n in holes)
