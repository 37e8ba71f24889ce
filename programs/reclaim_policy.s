# Reclaim: take from the page cache first, swap only the largest process.
#
# While the node's page cache holds at least twice the pages this pass must
# free, the whole pass comes from file pages (no swap-out: anonymous working
# sets stay resident).  Otherwise the pass is split evenly and its anonymous
# half is taken from the process with the largest RSS only (written to the
# context's target_pid), sparing the small ones.
#
# r0: percent of the pass taken from anonymous pages.
.hook reclaim

    r2 = *(u64 *)(r1 + 0)       # nr_to_reclaim
    r3 = *(u64 *)(r1 + 24)      # file_active
    r4 = *(u64 *)(r1 + 32)      # file_inactive
    r3 += r4
    r2 <<= 1
    r0 = 0
    if r3 >= r2 goto out        # plenty of page cache: file only
    r5 = *(u32 *)(r1 + 48)      # largest_pid
    *(u32 *)(r1 + 52) = r5      # target_pid
    r0 = 50
out:
    exit
