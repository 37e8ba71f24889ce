"""A walk recorder over several regions (:class:`~mmcore.pagetables.walkrec.WalkRecorder`
watches one buffer; the regions a table registers one after another are
watched as one address span, which holds nothing else)."""

from __future__ import annotations

from mmcore.pagetables.walkrec import WalkRecorder


class RegionsRecorder(WalkRecorder):
    """Records (region index, line, step) of each region load of a walk."""

    def watch_all(self, bufs: list[bytearray]) -> list[int]:
        """Watch every buffer of ``bufs``; returns their addresses."""
        addrs = [self.engine.address_of(b, "region") for b in bufs]
        base = min(addrs)
        end = max(a + len(b) for a, b in zip(addrs, bufs, strict=True))
        self._base, self._size = base, end - base
        self._spans = [(a - base, len(b)) for a, b in zip(addrs, bufs, strict=True)]
        return addrs

    def region_refs(self) -> list[tuple[int, int, int]]:
        out = []
        for line, step in self.refs:
            rel = line << 6
            for i, (start, size) in enumerate(self._spans):
                if start <= rel < start + size:
                    out.append((i, (rel - start) >> 6, step))
                    break
        return out
