# Allocation lifetime: keep short-lived and long-lived kernel allocations in
# separate pageblocks.
#
# Kernel allocations (slab, network buffers) from call sites profiled as
# long-lived go to unmovable pageblocks; everything else from those sources
# is steered to reclaimable pageblocks, which empty again when the
# short-lived allocations are freed instead of staying pinned by a few
# long-lived neighbours.  The profile is the bit mask LONG_SITES (bit i set:
# site i is long-lived); sites 32 and above are treated as short-lived.
#
# r0: 0 = the source's own migratetype, 1 = short-lived, 2 = long-lived.
.hook lifetime

    r2 = *(u32 *)(r1 + 0)       # source
    r3 = *(u32 *)(r1 + 8)       # site
    r0 = 0
    if r2 < 2 goto out          # user memory (anon, page cache): leave it
    if r2 > 4 goto out          # page tables: leave them
    r0 = 1                      # short-lived unless the profile says otherwise
    if r3 > 31 goto out
    r4 = 0x2                    # LONG_SITES: site 1 is the long-lived one
    r4 >>= r3
    r4 &= 1
    if r4 == 0 goto out
    r0 = 2
out:
    exit
