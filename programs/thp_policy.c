/* Huge pages: a per-process budget and a size choice that avoids stalls.
 *
 * The C version of thp_policy.s, same algorithm.  A 1 GiB page is taken
 * only when the hugetlb pool has a free page; a 2 MiB page while the
 * process holds fewer than BUDGET huge pages and the home node has at least
 * RESERVE free 2 MiB blocks; otherwise the fault gets a 4 KiB page.  A
 * per-process count of refused huge pages is kept in a hash map
 * (pid -> count) for inspection.
 *
 * Returns 0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB.
 */
#include "bpfvm.h"

#define BUDGET 256  /* 2 MiB pages a process may hold (512 MiB) */
#define RESERVE 32  /* free 2 MiB blocks kept for others */

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1024);
} refused SEC(".maps");

SEC("hugepage")
int thp_policy(struct hugepage_ctx *ctx)
{
    __u32 allowed = ctx->allowed;

    if ((allowed & 4) && ctx->free_1g != 0)
        return 2;  /* a free pool page: take it */
    if (allowed & 2) {
        if (ctx->huge_2m < BUDGET && ctx->free_2m >= RESERVE)
            return 1;
        /* over budget, or contiguity is scarce: keep it for others */
        __u32 pid = ctx->pid;
        __u64 *count = bpf_map_lookup_elem(&refused, &pid);
        if (count) {
            __sync_fetch_and_add(count, 1);
        } else {
            __u64 one = 1;
            bpf_map_update_elem(&refused, &pid, &one, BPF_ANY);
        }
    }
    return 0;
}
