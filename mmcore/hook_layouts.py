"""The MM hook points as :class:`bpfvm.hookspec.HookSpec` records (plain data).

Each record lays out the context struct the MM core fills before calling an
attached program, and the range r0 must fall in.  The MM core additionally
checks contract conditions that depend on the state (e.g. a node id must name
an existing node); a value failing either check makes the core use its
built-in policy and count a fallback.  These records are meant to move into
the project's shared hook table unchanged.
"""

from __future__ import annotations

from bpfvm.hookspec import HookSpec, layout

MAX_CTX_NODES = 4  # nodes whose free pages the placement context carries
REGION_ADDR = 0x1000_0000  # address a page-table program sees its region at

PLACEMENT = HookSpec(
    name="mm_placement",
    doc="Choose the NUMA node (memory tier) a new user page is allocated on.",
    fields=layout(
        ("order", 4),
        ("source", 4),
        ("pid", 4),
        ("home_node", 4),
        ("nr_nodes", 4),
        ("hint", 4),
        *((f"free_node{i}", 8) for i in range(MAX_CTX_NODES)),
    ),
    ret_min=0,
    ret_max=MAX_CTX_NODES - 1,
    ret_doc="node id (< nr_nodes)",
    helpers=("mm_node_free_pages",),
)

HUGEPAGE = HookSpec(
    name="mm_hugepage",
    doc="Choose the page size of an anonymous fault.",
    fields=layout(
        ("va", 8),
        ("vma_start", 8),
        ("vma_end", 8),
        ("pid", 4),
        ("allowed", 4),
        ("nr_2m", 4),
        ("nr_1g", 4),
        ("free_pages", 8),
    ),
    ret_min=0,
    ret_max=2,
    ret_doc="0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB; must be a bit set in allowed",
    helpers=("mm_node_free_pages",),
)

RECLAIM = HookSpec(
    name="mm_reclaim",
    doc="Split a reclaim pass between anon and file pages and pick a target.",
    fields=layout(
        ("nid", 4),
        ("nr_to_reclaim", 4),
        ("inactive_anon", 8),
        ("active_anon", 8),
        ("inactive_file", 8),
        ("active_file", 8),
        ("free_pages", 8),
    ),
    ret_min=0,
    ret_max=(1 << 32) - 1,
    ret_doc="anon percent (0..100) | target pid << 8 (0: every process)",
)

ZONE_RESIZE = HookSpec(
    name="mm_zone_resize",
    doc="At reclaim, move a node's normal/movable boundary (Contiguitas).",
    fields=layout(
        ("nid", 4),
        ("pad", 4),
        ("scanned_movable", 8),
        ("scanned_unmovable", 8),
        ("normal_pages", 8),
        ("movable_pages", 8),
        ("normal_free", 8),
        ("movable_free", 8),
    ),
    ret_min=-(1 << 16),
    ret_max=1 << 16,
    ret_doc="pageblocks to grow (+) or shrink (-) the normal zone by",
)

LIFETIME = HookSpec(
    name="mm_lifetime",
    doc="Classify a kernel allocation's expected lifetime to steer its placement.",
    fields=layout(("source", 4), ("order", 4), ("site", 4), ("pid", 4)),
    ret_min=0,
    ret_max=2,
    ret_doc="0 = default, 1 = short-lived (reclaimable pageblocks), 2 = long-lived (unmovable)",
)

PAGETABLE = HookSpec(
    name="mm_pagetable",
    doc="A page table as a program over its region: map, unmap, get.",
    fields=layout(
        ("op", 4),
        ("size_order", 4),
        ("va", 8),
        ("region", 8, False, "region"),
        ("region_size", 8),
    ),
    ret_min=0,
    ret_max=(1 << 63) - 1,
    ret_doc="pointer to the PTE in the region, or 0 (none)",
    helpers=("mm_region_size",),
    returns_pointer="region",
    objects={"region": "the page table's physically contiguous region"},
)

MM_HOOKS: tuple[HookSpec, ...] = (PLACEMENT, HUGEPAGE, RECLAIM, ZONE_RESIZE, LIFETIME, PAGETABLE)
PT_OP_MAP, PT_OP_UNMAP, PT_OP_GET = 0, 1, 2
