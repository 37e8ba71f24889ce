"""Memory compaction: control (``compaction_suitable``, deferral, modes),
the migrate and free scanners with pageblock skip bits, page migration and
kcompactd.  :class:`Compactor` is the entry point the MM core holds."""

from mmcore.phys.compaction.zone import Compactor

__all__ = ["Compactor"]
