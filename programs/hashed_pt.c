/* A hashed page table in a region: bucketized open addressing.
 *
 * The C version of hashed_pt.s, same algorithm and region layout: three
 * programs (SEC("pt_map"), SEC("pt_unmap"), SEC("pt_lookup")) sharing the
 * tag and hash subprograms of .text.
 *
 * Region layout (every offset in bytes):
 *   0    header line: +0 / +8 / +16 pages mapped of size 4 KiB / 2 MiB / 1 GiB
 *   64   NB bucket lines, NB = region bytes / 64 - 1.  A bucket is one 64-byte
 *        cache line of four 16-byte slots: tag (8) then PTE (8).
 * tag = vpn << 4 | size << 2 | 2, where vpn is the page's first 4 KiB page
 * number and size its size code (0 4 KiB, 1 2 MiB, 2 1 GiB); 0 = empty,
 * 1 = deleted.  The home bucket is a multiplicative hash of the tag scaled
 * to NB; collisions go to the next buckets, at most PROBES.  A probe stops
 * at the first bucket holding an empty slot.  pt_map returns 0 when all
 * PROBES buckets of the chain are full: the host then rebuilds the table.
 *
 * Each program starts with bpfvm_region_bytes(): the host sets that constant
 * to the size of the region the program runs on, and the verifier checks
 * every offset against it.
 */
#include "bpfvm.h"

/* The region the programs are verified against (`bpfvm verify hashed_pt.c`);
 * the MM core verifies them against the size of the region they run on. */
BPFVM_OBJECT(region, 64 * 1024);

#define LINE 64
#define SLOTS 4
#define PROBES 8
#define SIZES 3
#define EMPTY 0
#define DELETED 1
#define PTE_LEAF 16
/* The verifier bounds a loop by a register counting through it; the size
 * loops hold more live values than registers, so they are unrolled. */
#define UNROLL _Pragma("clang loop unroll(full)")

/* The tag of the page of size code `size` (page shift `shift`) holding va. */
static __noinline __u64 pt_tag(__u64 va, __u64 shift, __u64 size)
{
    return (va >> shift << shift) >> 12 << 4 | size << 2 | 2;
}

/* The home bucket of a tag, 0 .. nb - 1 (multiply-shift). */
static __noinline __u64 pt_home(__u64 tag, __u64 nb)
{
    return (tag * 0x9e3779b97f4a7c15ULL >> 32) * nb >> 32;
}

static __always_inline __u64 *bucket(__u8 *region, __u64 b)
{
    return (__u64 *)(region + (b + 1) * LINE);
}

static __always_inline __u64 *count_of(__u8 *region, __u64 size)
{
    return (__u64 *)(region + size * 8);
}

SEC("pt_lookup")
__u64 hashed_pt_lookup(struct pt_lookup_ctx *ctx)
{
    __u64 bytes = bpfvm_region_bytes();
    __u8 *region = ctx->region;
    __u64 va = ctx->va;
    __u64 nb = (bytes >> 6) - 1;

    UNROLL
    for (__u64 size = 0; size < SIZES; size++) {
        if (size != 0 && *count_of(region, size) == 0)
            continue;
        __u64 tag = pt_tag(va, 12 + 9 * size, size);
        __u64 b = pt_home(tag, nb);
        for (__u64 probe = 0; probe < PROBES; probe++) {
            __u64 *line = bucket(region, b);
            int empty = 0;
            for (int s = 0; s < SLOTS; s++) {
                __u64 t = line[2 * s];
                if (t == tag)
                    return (__u64)&line[2 * s + 1];
                if (t == EMPTY)
                    empty = 1;
            }
            if (empty)
                break;  /* the end of the chain: not of this size */
            b += 1;
            if (b >= nb)
                b = 0;
        }
    }
    return 0;
}

SEC("pt_map")
__u64 hashed_pt_map(struct pt_map_ctx *ctx)
{
    __u64 bytes = bpfvm_region_bytes();
    __u8 *region = ctx->region;
    __u64 va = ctx->va;
    __u64 shift = ctx->page_shift;
    __u64 nb = (bytes >> 6) - 1;

    if (shift < 12 || shift > 30)
        return 0;
    __u64 size = (shift - 12) / 9;
    __u64 tag = pt_tag(va, shift, size);
    __u64 b = pt_home(tag, nb);
    __u64 free = 0;  /* offset of the first free slot (0: none yet) */

    for (__u64 probe = 0; probe < PROBES; probe++) {
        __u64 off = (b + 1) * LINE;
        int empty = 0;
        for (int s = 0; s < SLOTS; s++, off += 16) {
            __u64 t = *(__u64 *)(region + off);
            if (t == tag)
                return (__u64)(region + off + 8);
            if (t > DELETED)
                continue;
            if (t == EMPTY)
                empty = 1;
            if (free == 0)
                free = off;
        }
        if (empty)
            break;  /* the end of the chain: the tag is not in the table */
        b += 1;
        if (b >= nb)
            b = 0;
    }
    if (free == 0)
        return 0;  /* chain full: the host rebuilds the table */
    __u64 *slot = (__u64 *)(region + free);
    slot[0] = tag;
    slot[1] = size << 2 | PTE_LEAF;  /* a leaf of this size, not present yet */
    *count_of(region, size) += 1;
    return (__u64)&slot[1];
}

SEC("pt_unmap")
__u64 hashed_pt_unmap(struct pt_unmap_ctx *ctx)
{
    __u64 bytes = bpfvm_region_bytes();
    __u8 *region = ctx->region;
    __u64 va = ctx->va;
    __u64 nb = (bytes >> 6) - 1;

    UNROLL
    for (__u64 size = 0; size < SIZES; size++) {
        if (*count_of(region, size) == 0)
            continue;
        __u64 tag = pt_tag(va, 12 + 9 * size, size);
        __u64 b = pt_home(tag, nb);
        for (__u64 probe = 0; probe < PROBES; probe++) {
            __u64 *line = bucket(region, b);
            int empty = 0, found = -1;
            for (int s = 0; s < SLOTS; s++) {
                __u64 t = line[2 * s];
                if (t == tag)
                    found = s;
                if (t == EMPTY)
                    empty = 1;
            }
            if (found >= 0) {
                /* deleted, unless the bucket ends a chain anyway */
                line[2 * found] = empty ? EMPTY : DELETED;
                line[2 * found + 1] = 0;
                *count_of(region, size) -= 1;
                return 0;
            }
            if (empty)
                break;
            b += 1;
            if (b >= nb)
                b = 0;
        }
    }
    return 1;
}
