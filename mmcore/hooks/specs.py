"""The MM hook points as records: context layout, return contract, helpers.

This is the one table of hooks: ``bpfvm hooks`` prints it, the verifier
checks programs against it, and the MM core (:mod:`mmcore.hooks.dispatch`) packs
contexts from these layouts and checks what programs return against them.

Every hook receives a pointer to its context struct in r1.  Fields are
little-endian unsigned integers unless their doc says otherwise; pointer
fields are filled in by the host before each call and typed as pointers by
the verifier.  The MM core checks r0 against ``ret_min..ret_max`` (signed)
and against conditions that depend on its state (a node must exist, a page
size must fit the VMA), and falls back to its built-in policy, counting a
fallback, when a program proposes something out of range.

``HOOKS`` maps each name to its record.  The MM core also accepts the
names prefixed with ``mm_`` (see :func:`canonical`).  The MM-specific
helpers (ids >= 1000) are records in :mod:`mmcore.hooks.helpers`, answered by
the MM core's host environment; this module only names them.
"""

from __future__ import annotations

from bpfvm.hookspec import HookSpec, layout

MM_HELPERS = ("map_lookup_elem", "map_update_elem", "map_delete_elem", "ktime_get_ns",
              "trace_printk", "get_prandom_u32")
MM_QUERY_HELPERS = ("mm_node_free_pages", "mm_node_distance", "mm_free_blocks",
                    "mm_proc_rss", "mm_proc_huge", "mm_tick")
POLICY_HELPERS = MM_HELPERS + MM_QUERY_HELPERS  # the policy hooks (not the page tables)

MAX_CTX_NODES = 4  # nodes whose free pages the placement context carries
PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G = 0, 1, 2
LIFETIME_DEFAULT, LIFETIME_SHORT, LIFETIME_LONG = 0, 1, 2
SOURCE_DOC = ("0 anon, 1 page cache, 2 reclaimable slab, 3 unmovable slab, 4 network buffer, "
              "5 page table")

PLACEMENT = HookSpec(
    name="placement",
    doc="Choose the NUMA node / memory tier a new user page is allocated from.",
    fields=layout(
        ("order", 4, False, None, "allocation order (0 = 4 KiB, 9 = 2 MiB, 18 = 1 GiB)"),
        ("source", 4, False, None, SOURCE_DOC),
        ("pid", 4, False, None, "process the page is for"),
        ("home_node", 4, False, None, "the process's home node (the built-in choice)"),
        ("nr_nodes", 4, False, None, "number of nodes"),
        ("hint", 4, False, None, "the VMA's hotness hint, 0 (cold) .. 1000 (hot)"),
        *((f"free_node{i}", 8, False, None, f"free pages on node {i} (0 if absent)")
          for i in range(MAX_CTX_NODES)),
    ),
    ret_min=0, ret_max=MAX_CTX_NODES - 1, ret_doc="node to allocate from (must exist)",
    helpers=POLICY_HELPERS,
)

HUGEPAGE = HookSpec(
    name="hugepage",
    doc="Choose the page size of an anonymous fault; enforce a per-process budget.",
    fields=layout(
        ("pid", 4, False, None, "faulting process"),
        ("allowed", 4, False, None,
         "bit i set: size i fits here (bit 0 4 KiB, always; bit 1 2 MiB; bit 2 1 GiB)"),
        ("va", 8, False, None, "faulting virtual address"),
        ("vma_start", 8, False, None, "start of the faulting VMA"),
        ("vma_end", 8, False, None, "end of the faulting VMA"),
        ("huge_2m", 8, False, None, "2 MiB pages the process holds"),
        ("huge_1g", 8, False, None, "1 GiB pages the process holds"),
        ("rss", 8, False, None, "process resident pages (4 KiB units)"),
        ("free_2m", 8, False, None,
         "free memory in blocks of 2 MiB or more on the home node, in 2 MiB units"),
        ("free_1g", 8, False, None, "free 1 GiB pages of the hugetlb pool on the home node"),
    ),
    ret_min=0, ret_max=2,
    ret_doc="0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB (must be allowed; a failed huge "
            "allocation falls back to the next smaller size)",
    helpers=POLICY_HELPERS,
)

RECLAIM = HookSpec(
    name="reclaim",
    doc="Split a reclaim pass between anonymous and file pages and pick a target.",
    fields=layout(
        ("nr_to_reclaim", 8, False, None, "pages this pass must free"),
        ("anon_active", 8, False, None, "active anonymous pages on the node"),
        ("anon_inactive", 8, False, None, "inactive anonymous pages on the node"),
        ("file_active", 8, False, None, "active page-cache pages on the node"),
        ("file_inactive", 8, False, None, "inactive page-cache pages on the node"),
        ("swappiness", 4, False, None, "0..200, as vm.swappiness"),
        ("nr_procs", 4, False, None, "number of processes"),
        ("largest_pid", 4, False, None, "process with the largest RSS (0: none)"),
        ("target_pid", 4, True, None,
         "write a pid to reclaim from that process's pages only (0: all)"),
        ("nid", 4, False, None, "node being reclaimed"),
        ("for_movable", 4, False, None, "1 if a movable allocation caused this pass"),
        ("free_pages", 8, False, None, "free pages on the node"),
    ),
    ret_min=0, ret_max=100, ret_doc="share of the pass taken from anonymous pages, percent",
    helpers=POLICY_HELPERS,
)

ZONE_RESIZE = HookSpec(
    name="zone_resize",
    doc="After reclaim, move a node's unmovable/movable boundary (Contiguitas).",
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
    ret_min=-(1 << 16), ret_max=1 << 16,
    ret_doc="pageblocks to grow (+) or shrink (-) the unmovable region by "
            "(a shrink stops at the first pageblock holding unmovable pages)",
    helpers=POLICY_HELPERS,
)

LIFETIME = HookSpec(
    name="lifetime",
    doc="Classify a kernel allocation's expected lifetime to steer its placement.",
    fields=layout(
        ("source", 4, False, None, SOURCE_DOC),
        ("order", 4, False, None, "allocation order"),
        ("site", 4, False, None, "allocation call site id"),
        ("pid", 4, False, None, "process on whose behalf (0: the kernel)"),
    ),
    ret_min=0, ret_max=2,
    ret_doc="0 = the source's own migratetype, 1 = short-lived (reclaimable pageblocks), "
            "2 = long-lived (unmovable pageblocks)",
    helpers=POLICY_HELPERS,
)


MAX_PT_REGIONS = 8  # regions a page-table program may own: region, region1 .. region7


def _pt_fields(*extra: tuple) -> tuple:
    return layout(
        ("region", 8, False, "region", "pointer to the program's (first) region"),
        ("region_size", 8, False, None, "region size in bytes (every region of the table)"),
        ("va", 8, False, None, "virtual address (pt_map: the page's first byte; pt_unmap "
                               "and pt_lookup: any byte of the page)"),
        ("pid", 4), ("page_shift", 4, False, None,
                     "pt_map: 12, 21 or 30 (4 KiB, 2 MiB, 1 GiB page); otherwise 12"),
        *((f"region{i}", 8, False, "region",
           f"pointer to the table's region {i}, of region_size bytes (a table with fewer "
           "regions: 0, or the first region again)") for i in range(1, MAX_PT_REGIONS)),
        *extra,
    )


PT_OBJECTS = {"region": "physically contiguous memory owned by the page-table program; a "
                        "table of several regions has them all of one size, each typed as "
                        "this object"}

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

POLICY_HOOKS = ("placement", "hugepage", "reclaim", "zone_resize", "lifetime")


def canonical(name: str) -> str | None:
    """The hook a name denotes (``mm_placement`` = ``placement``), or None."""
    if name in HOOKS:
        return name
    if name.startswith("mm_") and name[3:] in HOOKS:
        return name[3:]
    return None
