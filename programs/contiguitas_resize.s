# Contiguitas: resize the unmovable region at reclaim time.
#
# The MM core calls this program after every reclaim pass with the pages it
# scanned on behalf of unmovable and of movable allocations since the last
# call.  When unmovable allocations are the ones under pressure, the region
# grows by an eighth (at least one pageblock, at most 64 = 128 MiB per call).
# When movable allocations are under pressure and over half of the unmovable
# region is free, it gives back a quarter of its free pageblocks (at most
# 64).  Either step stays within [min_blocks, max_blocks].
#
# r0: pageblocks to add (+) or remove (-) from the unmovable region.
.hook zone_resize

    r6 = *(u64 *)(r1 + 0)       # scanned_unmovable
    r7 = *(u64 *)(r1 + 8)       # scanned_movable
    r8 = *(u64 *)(r1 + 16)      # unmovable_blocks
    r0 = 0
    if r6 <= r7 goto maybe_shrink   # grow only under unmovable pressure
    r3 = r8
    r3 >>= 3                    # step = blocks / 8 ...
    if r3 != 0 goto cap_grow
    r3 = 1                      # ... at least 1
cap_grow:
    if r3 <= 64 goto room
    r3 = 64                     # ... at most 64
room:
    r4 = *(u64 *)(r1 + 56)      # max_blocks
    if r8 >= r4 goto out        # already at the maximum
    r4 -= r8                    # room left
    if r3 <= r4 goto grow
    r3 = r4
grow:
    r0 = r3
    exit

maybe_shrink:
    if r7 == 0 goto out         # no pressure at all
    r2 = *(u64 *)(r1 + 32)      # free_unmovable (pages)
    r3 = r8
    r3 <<= 8                    # half the region, in pages (512 / 2 per block)
    if r2 <= r3 goto out
    r2 >>= 11                   # a quarter of the free pageblocks (/512 /4)
    if r2 == 0 goto out
    if r2 <= 64 goto floor
    r2 = 64
floor:
    r4 = *(u64 *)(r1 + 48)      # min_blocks
    if r8 <= r4 goto out        # already at the minimum
    r5 = r8
    r5 -= r4                    # blocks we may give back
    if r2 <= r5 goto shrink
    r2 = r5
shrink:
    r0 = 0
    r0 -= r2
out:
    exit
