# Huge pages: a per-process budget and a size choice that avoids stalls.
#
# A 1 GiB page is taken only when the hugetlb pool has a free page (the
# built-in policy asks for one on every fault that fits one, and pays with
# migrating a 1 GiB range for a surplus page when the pool has none).  A 2 MiB page is taken
# while the process holds fewer than BUDGET (256 = 512 MiB) huge pages and
# the home node has at least RESERVE (32) free 2 MiB blocks; otherwise the
# fault gets a 4 KiB page.  A per-process count of refused huge pages is
# kept in a hash map (pid -> count) for inspection.
#
# r0: 0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB.
.hook hugepage
.map refused hash key=4 value=8 entries=1024

    r6 = r1
    r2 = *(u32 *)(r6 + 4)       # allowed
    r0 = 2
    r3 = r2
    r3 &= 4
    if r3 == 0 goto try_2m
    r4 = *(u64 *)(r6 + 64)      # free_1g
    if r4 != 0 goto out         # a free pool page: take it
try_2m:
    r3 = r2
    r3 &= 2
    if r3 == 0 goto small
    r4 = *(u64 *)(r6 + 32)      # huge_2m held
    if r4 >= 256 goto refuse    # over budget
    r4 = *(u64 *)(r6 + 56)      # free_2m
    if r4 < 32 goto refuse      # contiguity is scarce: keep it for others
    r0 = 1
    exit
refuse:
    r2 = *(u32 *)(r6 + 0)       # pid
    *(u32 *)(r10 - 4) = r2
    r1 = map[refused] ll
    r2 = r10
    r2 += -4
    call map_lookup_elem
    if r0 == 0 goto first
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    goto small
first:
    *(u64 *)(r10 - 16) = 1
    r1 = map[refused] ll
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -16
    r4 = 0
    call map_update_elem
small:
    r0 = 0
out:
    exit
