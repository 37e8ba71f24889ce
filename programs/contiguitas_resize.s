# Contiguitas: resize the unmovable region at reclaim time.
#
# The MM core calls this program after every reclaim pass on a node with the
# pages scanned on behalf of unmovable and of movable allocations since the
# last call, and the sizes of the node's two regions.
#
# Grow: when unmovable allocations are the ones under pressure, the region
# grows by the memory they had to reclaim: the pages scanned on their behalf
# since the last call, in pageblocks rounded up (at most 64 = 128 MiB per
# call, never past max_blocks).  A step proportional to the shortfall, not to
# the region: the MM core decides after every reclaim pass, many times in a
# burst, and a pageblock taken from the movable region arrives full of movable
# pages, so the passes that follow a growth still reclaim; a step of a share of
# the region compounded over those passes grew it far past what the unmovable
# allocations held.  "Under pressure" means the window's unmovable
# scans exceed the recent movable scans (a sum halved every tick).  When the
# whole machine is short of memory, movable allocations reclaim too, and
# pageblocks taken from the movable region would come full of movable pages
# and help nobody: the region does not grow.
#
# Shrink: a region larger than its floor (a tenth of the node, the region's
# usual size, and at least min_blocks) gives pageblocks back, at most 64 per
# call and never below the floor:
#   - after a pass that scanned nothing for movable allocations, once
#     unmovable allocations have not been under pressure for QUIET (20)
#     ticks: a quarter of its free pageblocks when over half of it is free
#     (the pressure has subsided: memory idle in the region goes back before
#     movable allocations fall back into it and fill it);
#   and when movable allocations reclaim:
#   - a quarter of its free pageblocks when over half of it is free;
#   - otherwise, once unmovable allocations have not been under pressure for
#     QUIET (20) ticks, a quarter of what it holds above the floor: the
#     growth was for a burst that is over (movable pages that fell back into
#     the region do not stop this; the MM core gives back only pageblocks
#     free of unmovable pages and lets the others drain).
#
# State (map `state`, one entry): recent movable scans, the tick they were
# last decayed, the last tick unmovable allocations were under pressure
# (ticks from ktime_get_ns: the MM's clock runs 1 ms per tick).
#
# r0: pageblocks to add (+) or remove (-) from the unmovable region.
.hook zone_resize
.map state array key=4 value=24 entries=1

    r6 = r1
    call ktime_get_ns
    r8 = r0
    r8 /= 1000000               # now, in ticks (a tick is 1 ms of simulated time)
    *(u32 *)(r10 - 4) = 0
    r1 = map[state] ll
    r2 = r10
    r2 += -4
    call map_lookup_elem
    if r0 == 0 goto out         # (an array's key 0 always exists)
    r7 = r0
    r9 = *(u64 *)(r7 + 0)       # recent movable scans ...
    r3 = *(u64 *)(r7 + 8)       # ... as of this tick
    *(u64 *)(r7 + 8) = r8
    r4 = r8
    r4 -= r3                    # ticks since
    if r4 < 64 goto decay
    r4 = 63
decay:
    r9 >>= r4                   # halved per tick
    r3 = *(u64 *)(r6 + 8)       # scanned_movable
    r9 += r3
    *(u64 *)(r7 + 0) = r9
    r0 = 0
    r2 = *(u64 *)(r6 + 0)       # scanned_unmovable
    r5 = *(u64 *)(r6 + 16)      # unmovable_blocks
    if r2 <= r9 goto maybe_shrink
    *(u64 *)(r7 + 16) = r8      # unmovable pressure now
    r3 = r2
    r3 += 511
    r3 >>= 9                    # step = the pages scanned, in pageblocks (rounded up)
cap_grow:
    if r3 <= 64 goto room
    r3 = 64                     # ... at most 64
room:
    r4 = *(u64 *)(r6 + 56)      # max_blocks
    if r5 >= r4 goto out        # already at the maximum
    r4 -= r5                    # room left
    if r3 <= r4 goto grow
    r3 = r4
grow:
    r0 = r3
    exit

maybe_shrink:
    r4 = *(u64 *)(r6 + 24)      # movable_blocks
    r4 += r5
    r4 /= 10                    # floor: a tenth of the node ...
    r3 = *(u64 *)(r6 + 48)      # min_blocks
    if r4 >= r3 goto have_floor
    r4 = r3                     # ... and at least min_blocks
have_floor:
    if r5 <= r4 goto out        # already at the floor
    r1 = r5
    r1 -= r4                    # blocks above the floor
    r9 = *(u64 *)(r7 + 16)      # last unmovable pressure ...
    r9 += 20                    # ... + QUIET: quiet from this tick on
    r2 = *(u64 *)(r6 + 32)      # free_unmovable (pages)
    r3 = r5
    r3 <<= 8                    # half the region, in pages (512 / 2 per block)
    r0 = *(u64 *)(r6 + 8)       # scanned_movable in this window
    if r0 != 0 goto pressed
    if r2 <= r3 goto out        # no movable pressure: only a mostly free ...
    if r8 < r9 goto out         # ... and quiet region gives blocks back
    r2 >>= 11                   # a quarter of the free pageblocks (/512 /4)
    goto step
pressed:
    if r2 <= r3 goto quiet
    r2 >>= 11                   # a quarter of the free pageblocks (/512 /4)
    goto step
quiet:
    if r8 < r9 goto nothing     # too recent
    r2 = r1
    r2 >>= 2                    # a quarter of what is above the floor ...
    if r2 != 0 goto step
    r2 = 1                      # ... at least 1
step:
    if r2 == 0 goto nothing
    if r2 <= 64 goto cap
    r2 = 64
cap:
    if r2 <= r1 goto shrink     # never below the floor
    r2 = r1
shrink:
    r0 = 0
    r0 -= r2
    exit
nothing:
    r0 = 0
out:
    exit
