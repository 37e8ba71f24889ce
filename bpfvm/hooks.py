"""The MM hook points as records: context layout, return contract, helpers.

Every hook receives a pointer to its context struct in r1.  Fields are
little-endian unsigned integers unless their doc says otherwise; pointer
fields are filled in by the host before each call and typed as pointers by
the verifier.  The MM core builds contexts from these layouts, checks r0
against ``ret_min..ret_max`` (signed) and falls back to its built-in policy
when a program proposes something out of range.

``HOOKS`` maps each name to its record; ``bpfvm hooks`` prints them.
"""

from __future__ import annotations

from bpfvm.hookspec import HookSpec, layout

MM_HELPERS = ("map_lookup_elem", "map_update_elem", "map_delete_elem", "ktime_get_ns",
              "trace_printk", "get_prandom_u32")

PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G = 0, 1, 2

PLACEMENT = HookSpec(
    name="placement",
    doc="Choose the NUMA node / memory tier a new page is allocated from.",
    fields=layout(
        ("order", 4, False, None, "allocation order (0 = 4 KiB)"),
        ("migratetype", 4, False, None, "0 unmovable, 1 movable, 2 reclaimable"),
        ("source", 4, False, None, "0 anon, 1 page cache, 2 slab, 3 netbuf, 4 page table"),
        ("pid", 4, False, None, "process the page is for (0: kernel)"),
        ("local_node", 4, False, None, "node of the CPU asking"),
        ("nr_nodes", 4, False, None, "number of nodes"),
        ("hotness", 4, False, None, "accesses seen to this page's region, scaled 0..1000"),
        ("pad", 4),
        ("free_node0", 8, False, None, "free pages on node 0"),
        ("free_node1", 8, False, None, "free pages on node 1"),
    ),
    ret_min=0, ret_max=7, ret_doc="node to allocate from (must exist)",
    helpers=MM_HELPERS,
)

HUGEPAGE = HookSpec(
    name="hugepage",
    doc="Choose the page size of an anonymous fault; enforce a per-process budget.",
    fields=layout(
        ("pid", 4, False, None, "faulting process"),
        ("allowed", 4, False, None, "bit 0: 2 MiB fits the VMA, bit 1: 1 GiB fits"),
        ("va", 8, False, None, "faulting virtual address"),
        ("vma_start", 8), ("vma_end", 8),
        ("huge_2m", 8, False, None, "2 MiB pages the process holds"),
        ("huge_1g", 8, False, None, "1 GiB pages the process holds"),
        ("rss", 8, False, None, "process resident pages (4 KiB units)"),
        ("free_2m", 8, False, None, "free blocks of order >= 9 in the zone"),
        ("free_1g", 8, False, None, "free blocks of order 18"),
    ),
    ret_min=0, ret_max=2, ret_doc="0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB (must be allowed)",
    helpers=MM_HELPERS,
)

RECLAIM = HookSpec(
    name="reclaim",
    doc="Split a reclaim pass between anonymous and file pages and pick a target.",
    fields=layout(
        ("nr_to_reclaim", 8, False, None, "pages this pass must free"),
        ("anon_active", 8), ("anon_inactive", 8), ("file_active", 8), ("file_inactive", 8),
        ("swappiness", 4, False, None, "0..200, as vm.swappiness"),
        ("nr_procs", 4, False, None, "number of processes"),
        ("largest_pid", 4, False, None, "process with the largest RSS"),
        ("target_pid", 4, True, None, "write a pid to reclaim from it only (0: all)"),
    ),
    ret_min=0, ret_max=100, ret_doc="share of the pass taken from anonymous pages, percent",
    helpers=MM_HELPERS,
)

ZONE_RESIZE = HookSpec(
    name="zone_resize",
    doc="At reclaim, move the unmovable/movable boundary (Contiguitas).",
    fields=layout(
        ("scanned_unmovable", 8, False, None, "pages scanned for unmovable allocations"),
        ("scanned_movable", 8, False, None, "pages scanned for movable allocations"),
        ("unmovable_blocks", 8, False, None, "pageblocks in the unmovable region"),
        ("movable_blocks", 8, False, None, "pageblocks in the movable region"),
        ("free_unmovable", 8, False, None, "free pages in the unmovable region"),
        ("free_movable", 8, False, None, "free pages in the movable region"),
        ("min_blocks", 8, False, None, "smallest allowed unmovable region, pageblocks"),
        ("max_blocks", 8, False, None, "largest allowed unmovable region, pageblocks"),
    ),
    ret_min=-(1 << 20), ret_max=1 << 20,
    ret_doc="pageblocks to grow (+) or shrink (-) the unmovable region by",
    helpers=MM_HELPERS,
)

LIFETIME = HookSpec(
    name="lifetime",
    doc="Classify a kernel allocation's expected lifetime to steer its placement.",
    fields=layout(
        ("source", 4, False, None, "2 slab, 3 netbuf, 4 page table"),
        ("order", 4), ("site", 4, False, None, "allocation call site id"),
        ("pid", 4), ("size", 8, False, None, "bytes requested"),
    ),
    ret_min=0, ret_max=1, ret_doc="0 = short-lived, 1 = long-lived",
    helpers=MM_HELPERS,
)


def _pt_fields(*extra: tuple) -> tuple:
    return layout(
        ("region", 8, False, "region", "pointer to the program's region"),
        ("region_size", 8, False, None, "region size in bytes"),
        ("va", 8, False, None, "virtual address (page aligned)"),
        ("pid", 4), ("page_shift", 4, False, None, "12, 21 or 30"),
        *extra,
    )


PT_OBJECTS = {"region": "physically contiguous memory owned by the page-table program"}

PT_MAP = HookSpec(
    name="pt_map",
    doc="Page tables: make room for the PTE of va; return a pointer to it.",
    fields=_pt_fields(), ret_min=0, ret_max=(1 << 63) - 1,
    ret_doc="pointer to the 8-byte PTE slot in the region, or 0 when full",
    helpers=MM_HELPERS, returns_pointer="region", objects=PT_OBJECTS,
)

PT_UNMAP = HookSpec(
    name="pt_unmap",
    doc="Page tables: forget the PTE of va.",
    fields=_pt_fields(), ret_min=0, ret_max=1, ret_doc="0 = removed, 1 = was not mapped",
    helpers=MM_HELPERS, objects=PT_OBJECTS,
)

PT_LOOKUP = HookSpec(
    name="pt_lookup",
    doc="Page tables: find the PTE of va; every load from the region is a walk reference.",
    fields=_pt_fields(), ret_min=0, ret_max=(1 << 63) - 1,
    ret_doc="pointer to the PTE slot in the region, or 0 when va is not mapped",
    helpers=MM_HELPERS, returns_pointer="region", objects=PT_OBJECTS,
)

HOOKS: dict[str, HookSpec] = {h.name: h for h in (
    PLACEMENT, HUGEPAGE, RECLAIM, ZONE_RESIZE, LIFETIME, PT_MAP, PT_UNMAP, PT_LOOKUP)}
