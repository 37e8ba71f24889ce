"""Small machines and crafted layouts shared by the MM tests."""

from mmcore.constants import MT
from mmcore.mm import MM
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.sources import KERNEL_OWNER, Source

SLAB = KERNEL_OWNER[Source.SLAB_UNMOVABLE]


def small_mm(pages: int = 4096, movable: int = 0, nodes: int = 1) -> MM:
    return MM(MachineSpec(tuple(NodeSpec(pages, movable) for _ in range(nodes))))


def fragment(mm: MM, zone_index: int = 0) -> None:
    """Every odd frame of the zone becomes an unmovable slab page: no free
    block above order 0 is left."""
    z = mm.phys.zones[zone_index]
    mm.pa.drain_all()
    mm.pa.take_range(z, z.start, z.end)
    for pfn in range(z.start, z.end):
        if pfn & 1:
            mm.pa.prep(pfn, 0, MT.UNMOVABLE, SLAB, 0)
            mm.kernel.pages[Source.SLAB_UNMOVABLE] += 1  # the kernel's count of its pages
        else:
            mm.pa.free_one(z, pfn, 0, MT.MOVABLE)


def pt_sections(text: str, filename: str = "t.s", helpers=None) -> dict:
    """The three page-table programs of assembly ``text``, checked, by hook."""
    from bpfvm.asm.sections import split_sections
    from mmcore.hooks.helpers import policy_helpers
    from mmcore.pagetables.loading import check_sections

    programs = split_sections(text, filename, helpers=helpers or policy_helpers())
    return check_sections(programs, filename)
