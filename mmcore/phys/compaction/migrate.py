"""Page migration (``migrate_pages`` for one folio): copy a movable page's
metadata to a free frame, rewrite its mapping through the owner's rmap
callback (``remap``: a PTE write and TLB invalidation for a process, the
page index for page cache), move its LRU position and free the source.

A 2 MiB folio (THP) migrates as a unit into a free order-9 target.  A page
is migratable when it is an allocated movable block with an owner that can
remap it and it is not pinned (``MM.pinned``: long-term pins such as
``FOLL_LONGTERM`` GUP keep the page where it is; reclaim may still drop
it).  The new page takes the old one's place on its LRU list when both are
on one node; a page migrated to another node (``alloc_contig_range``'s
targets may come from any node) goes to the head of that node's list of
the same kind, as ``putback_lru_page`` adds it: LRU lists are per node.

Differences from Linux: no migration entries, no dirty or writeback
state, no -EAGAIN retries: a migration either happens or is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmcore.constants import MT, PAGEBLOCK_ORDER
from mmcore.phys.buddy import ALLOC, TAIL

if TYPE_CHECKING:
    from mmcore.mm import MM


def movable_owned(mm: MM, pfn: int) -> bool:
    """An allocated movable block whose owner can remap it (pin or not)."""
    fr = mm.frames
    return fr.state[pfn] == ALLOC and fr.mt[pfn] == MT.MOVABLE and bool(
        mm.owners.get(fr.owner[pfn]))


def migrate(mm: MM, src: int, dst: int) -> None:
    """Move the block at ``src`` (order 0 or a THP) to the free frames at
    ``dst`` (a free frame or block of the same order, off the free lists,
    state TAIL or ALLOC) and free ``src``."""
    fr, pa = mm.frames, mm.pa
    order, index = fr.order[src], fr.get_index(src)
    pa.prep(dst, order, fr.mt[src], fr.owner[src], index)
    mm.owners[fr.owner[src]].remap(src, dst, index, order)
    if fr.lru[src]:
        zones = mm.phys.zones
        if zones[fr.pb_zone[src >> PAGEBLOCK_ORDER]].nid == zones[
                fr.pb_zone[dst >> PAGEBLOCK_ORDER]].nid:
            mm.lru.replace(src, dst)
        else:
            lists_per_node = len(mm.lru.head) // len(mm.phys.nodes)
            mm.lru.add_new(dst, mm.lru.remove(src) % lists_per_node)
    fr.owner[src] = 0
    fr.state[src] = TAIL
    pa.free_one(mm.phys.zone_of(src), src, order, fr.pb_mt[src >> PAGEBLOCK_ORDER])
