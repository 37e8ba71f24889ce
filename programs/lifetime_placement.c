/* Allocation lifetime: keep short-lived and long-lived kernel allocations in
 * separate pageblocks.
 *
 * The C version of lifetime_placement.s, with the profile as a constant
 * table (in .rodata) instead of a bit mask: site_class[i] is the class of
 * call site i.  Kernel allocations (slab, network buffers) from sites
 * profiled as long-lived go to unmovable pageblocks; everything else from
 * those sources is steered to reclaimable pageblocks.  Sites beyond the
 * table are treated as short-lived.
 *
 * Returns 0 = the source's own migratetype, 1 = short-lived, 2 = long-lived.
 */
#include "bpfvm.h"

#define SHORT 1
#define LONG 2
#define NR_SITES 32

/* The profile: site 1 is the long-lived one.  `const volatile`, as libbpf
 * programs declare read-only data the loader may set: clang keeps the reads
 * (and the check below) instead of folding what it knows of the table. */
static const volatile __u8 site_class[NR_SITES] = {
    SHORT, LONG, SHORT, SHORT, SHORT, SHORT, SHORT, SHORT,
    SHORT, SHORT, SHORT, SHORT, SHORT, SHORT, SHORT, SHORT,
    SHORT, SHORT, SHORT, SHORT, SHORT, SHORT, SHORT, SHORT,
    SHORT, SHORT, SHORT, SHORT, SHORT, SHORT, SHORT, SHORT,
};

SEC("lifetime")
int lifetime_placement(struct lifetime_ctx *ctx)
{
    __u32 source = ctx->source;
    __u32 site = ctx->site;

    if (source < 2 || source > 4)
        return 0;  /* user memory and page tables: leave them */
    if (site >= NR_SITES)
        return SHORT;
    __u32 class = site_class[site];
    /* The verifier knows a byte, 0..255: the check tells it the result is a
     * valid class. */
    return class <= LONG ? class : SHORT;
}
