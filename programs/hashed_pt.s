# A hashed page table in a region: bucketized open addressing.
#
# Three programs, one per .hook section (pt_map, pt_unmap, pt_lookup);
# mmcore.progpt assembles each section on its own.
#
# Region layout (every offset in bytes):
#   0    header line: +0 / +8 / +16 pages mapped of size 4 KiB / 2 MiB / 1 GiB,
#        +24 end of the metadata (64: only the header)
#   64   NB bucket lines, NB = region bytes / 64 - 1.  A bucket is one 64-byte
#        cache line of four 16-byte slots: tag (8) then PTE (8).
# tag = vpn << 4 | size << 2 | 2, where vpn is the page's first 4 KiB page
# number and size its size code (0 4 KiB, 1 2 MiB, 2 1 GiB); 0 = empty,
# 1 = deleted.  The home bucket is a multiplicative hash of the tag scaled to
# NB (multiply-shift); collisions go to the next buckets, at most 8.  A probe
# stops at the first bucket holding an empty slot, so a hit in the home
# bucket costs one cache line.  A lookup tries 4 KiB first, then 2 MiB and
# 1 GiB when the header says such pages exist.  pt_map returns 0 when all
# 8 buckets of the chain are full: the host then rebuilds the table.
#
# The first instruction of each section loads the region size in bytes; the
# host sets it to the size of the region the program runs on (the verifier
# checks every offset against that constant).

# The region size `bpfvm verify` assumes when run on this file alone; it
# equals the r9 constant each section starts with (the host re-sizes both
# per region).
.object region 64KiB

.hook pt_lookup
    r9 = 65536 ll               # region bytes
    r6 = *(u64 *)(r1 + 0)       # region
    r7 = *(u64 *)(r1 + 16)      # va
    r9 >>= 6
    r9 -= 1                     # NB
    r8 = 0                      # size code
l_size:
    if r8 == 0 goto l_probe
    r2 = r8
    r2 <<= 3
    r3 = r6
    r3 += r2
    r2 = *(u64 *)(r3 + 0)       # pages of this size
    if r2 == 0 goto l_next_size
l_probe:
    r2 = r8
    r2 *= 9
    r2 += 12                    # page shift
    r3 = r7
    r3 >>= r2
    r3 <<= r2
    r3 >>= 12                   # first vpn of the page
    r3 <<= 4
    r2 = r8
    r2 <<= 2
    r3 |= r2
    r3 |= 2                     # r3 = tag
    r4 = r3
    r2 = 0x9e3779b97f4a7c15 ll
    r4 *= r2
    r4 >>= 32
    r4 *= r9
    r4 >>= 32                   # home bucket, 0..NB-1
    r5 = 0                      # buckets probed
l_bucket:
    r2 = r4
    r2 += 1
    r2 <<= 6
    r0 = r6
    r0 += r2                    # the bucket's line
    r1 = 0                      # an empty slot seen
    r2 = *(u64 *)(r0 + 0)
    if r2 == r3 goto l_hit0
    if r2 != 0 goto l_s1
    r1 = 1
l_s1:
    r2 = *(u64 *)(r0 + 16)
    if r2 == r3 goto l_hit1
    if r2 != 0 goto l_s2
    r1 = 1
l_s2:
    r2 = *(u64 *)(r0 + 32)
    if r2 == r3 goto l_hit2
    if r2 != 0 goto l_s3
    r1 = 1
l_s3:
    r2 = *(u64 *)(r0 + 48)
    if r2 == r3 goto l_hit3
    if r2 == 0 goto l_next_size
    if r1 != 0 goto l_next_size
    r4 += 1
    if r4 < r9 goto l_wrapped
    r4 = 0
l_wrapped:
    r5 += 1
    if r5 < 8 goto l_bucket
l_next_size:
    r8 += 1
    if r8 < 3 goto l_size
    r0 = 0
    exit
l_hit0:
    r0 += 8
    exit
l_hit1:
    r0 += 24
    exit
l_hit2:
    r0 += 40
    exit
l_hit3:
    r0 += 56
    exit

.hook pt_map
    r9 = 65536 ll               # region bytes
    r6 = *(u64 *)(r1 + 0)       # region
    r7 = *(u64 *)(r1 + 16)      # va
    r8 = *(u32 *)(r1 + 28)      # page shift: 12, 21 or 30
    r9 >>= 6
    r9 -= 1                     # NB
    r0 = 0
    if r8 < 12 goto m_out
    if r8 > 30 goto m_out
    r3 = r7
    r3 >>= r8
    r3 <<= r8
    r3 >>= 12                   # first vpn of the page
    r3 <<= 4
    r8 -= 12
    r8 /= 9                     # size code
    r2 = r8
    r2 <<= 2
    r3 |= r2
    r3 |= 2                     # r3 = tag
    r4 = r3
    r2 = 0x9e3779b97f4a7c15 ll
    r4 *= r2
    r4 >>= 32
    r4 *= r9
    r4 >>= 32                   # home bucket
    r5 = 0                      # buckets probed
    r7 = 0                      # offset of the first free slot (0: none yet)
m_bucket:
    r2 = r4
    r2 += 1
    r2 <<= 6                    # offset of the bucket's line
    r0 = r6
    r0 += r2
    r1 = 0                      # an empty slot seen
    r0 = *(u64 *)(r0 + 0)
    if r0 == r3 goto m_found
    if r0 > 1 goto m_t1
    if r0 != 0 goto m_free0
    r1 = 1
m_free0:
    if r7 != 0 goto m_t1
    r7 = r2
m_t1:
    r2 += 16
    r0 = r6
    r0 += r2
    r0 = *(u64 *)(r0 + 0)
    if r0 == r3 goto m_found
    if r0 > 1 goto m_t2
    if r0 != 0 goto m_free1
    r1 = 1
m_free1:
    if r7 != 0 goto m_t2
    r7 = r2
m_t2:
    r2 += 16
    r0 = r6
    r0 += r2
    r0 = *(u64 *)(r0 + 0)
    if r0 == r3 goto m_found
    if r0 > 1 goto m_t3
    if r0 != 0 goto m_free2
    r1 = 1
m_free2:
    if r7 != 0 goto m_t3
    r7 = r2
m_t3:
    r2 += 16
    r0 = r6
    r0 += r2
    r0 = *(u64 *)(r0 + 0)
    if r0 == r3 goto m_found
    if r0 > 1 goto m_t4
    if r0 != 0 goto m_free3
    r1 = 1
m_free3:
    if r7 != 0 goto m_t4
    r7 = r2
m_t4:
    if r1 != 0 goto m_insert     # end of the chain: the tag is not in the table
    r4 += 1
    if r4 < r9 goto m_wrapped
    r4 = 0
m_wrapped:
    r5 += 1
    if r5 < 8 goto m_bucket
m_insert:
    r0 = 0
    if r7 == 0 goto m_out        # chain full: the host rebuilds the table
    r0 = r6
    r0 += r7
    *(u64 *)(r0 + 0) = r3
    r2 = r8
    r2 <<= 2
    r2 |= 16                    # PTE_LEAF | size, not present yet
    *(u64 *)(r0 + 8) = r2
    r0 += 8
    r2 = r8
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 0)
    r2 += 1
    *(u64 *)(r1 + 0) = r2
m_out:
    exit
m_found:
    r0 = r6
    r0 += r2
    r0 += 8
    exit

.hook pt_unmap
    r9 = 65536 ll               # region bytes
    r6 = *(u64 *)(r1 + 0)       # region
    r2 = *(u64 *)(r1 + 16)      # va
    *(u64 *)(r10 - 8) = r2
    r9 >>= 6
    r9 -= 1                     # NB
    r8 = 0                      # size code
u_size:
    r2 = r8
    r2 <<= 3
    r3 = r6
    r3 += r2
    r2 = *(u64 *)(r3 + 0)       # pages of this size
    if r2 == 0 goto u_next_size
    r2 = r8
    r2 *= 9
    r2 += 12
    r3 = *(u64 *)(r10 - 8)      # va
    r3 >>= r2
    r3 <<= r2
    r3 >>= 12
    r3 <<= 4
    r2 = r8
    r2 <<= 2
    r3 |= r2
    r3 |= 2                     # r3 = tag
    r4 = r3
    r2 = 0x9e3779b97f4a7c15 ll
    r4 *= r2
    r4 >>= 32
    r4 *= r9
    r4 >>= 32                   # home bucket
    r5 = 0
u_bucket:
    r2 = r4
    r2 += 1
    r2 <<= 6
    r7 = r6
    r7 += r2                    # the bucket's line
    r1 = 0                      # an empty slot seen
    r2 = 0                      # offset of the tag's slot in the line, + 1
    r0 = *(u64 *)(r7 + 0)
    if r0 != r3 goto u_e0
    r2 = 1
u_e0:
    if r0 != 0 goto u_t1
    r1 = 1
u_t1:
    r0 = *(u64 *)(r7 + 16)
    if r0 != r3 goto u_e1
    r2 = 17
u_e1:
    if r0 != 0 goto u_t2
    r1 = 1
u_t2:
    r0 = *(u64 *)(r7 + 32)
    if r0 != r3 goto u_e2
    r2 = 33
u_e2:
    if r0 != 0 goto u_t3
    r1 = 1
u_t3:
    r0 = *(u64 *)(r7 + 48)
    if r0 != r3 goto u_e3
    r2 = 49
u_e3:
    if r0 != 0 goto u_check
    r1 = 1
u_check:
    if r2 != 0 goto u_remove
    if r1 != 0 goto u_next_size
    r4 += 1
    if r4 < r9 goto u_wrapped
    r4 = 0
u_wrapped:
    r5 += 1
    if r5 < 8 goto u_bucket
u_next_size:
    r8 += 1
    if r8 < 3 goto u_size
    r0 = 1
    exit
u_remove:
    r2 -= 1
    r7 += r2                    # the slot
    r2 = 1                      # deleted, unless the bucket ends a chain anyway
    if r1 == 0 goto u_mark
    r2 = 0
u_mark:
    *(u64 *)(r7 + 0) = r2
    r2 = 0
    *(u64 *)(r7 + 8) = r2
    r2 = r8
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 0)
    r2 -= 1
    *(u64 *)(r1 + 0) = r2
    r0 = 0
    exit
