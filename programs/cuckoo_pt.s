# An elastic cuckoo page table with clustered entries (after ECPT, Skarlatos
# et al., ASPLOS'20): one 3-ary cuckoo hash table per page size, probed in
# parallel, each entry one 64-byte line holding the PTEs of 8 consecutive
# pages of its size under one tag.
#
# Three programs, one per .hook section (pt_map, pt_unmap, pt_lookup).  The
# host (mmcore.pagetables.ecpt) does what ECPT leaves to the OS: cuckoo
# displacement of whole entries when all three candidate buckets are taken,
# and elastic resizing (a new table of twice or half the buckets, filled
# gradually while the old one is still probed).  These programs only read
# the table registers.
#
# Regions: one per way, all of one size (ctx->region for way 0,
# ctx->region1 for way 1, ctx->region2 for way 2).  Layout (bytes):
#   0      of way 0's region, line 0: +0/+8/+16 pages mapped per size code,
#          +24 end of the metadata (256), +32/+40/+48 entries in use per
#          size code; the other regions leave 0..255 unused
#   64     of way 0's region, line 1 + s, the table registers of size code s
#          (0 4 KiB, 1 2 MiB, 2 1 GiB): +0 NB buckets per way, +8 base offset
#          of the table, +16 old NB (0: no resize in progress), +24 old
#          base, +32 P, the rehash pointer (old buckets below P are already
#          moved)
#   256..  tables, placed by the host.  Way w of a table (base, NB) is NB
#          bucket lines from base in way w's region; a bucket is one entry:
#          eight 8-byte PTEs, of pages vpn & ~7 .. vpn | 7 (vpn = va >> page
#          shift), PTE k at +8k.  The entry's tag lives in the PTEs' unused
#          bits 52..63: bits 12k..12k+11 of the tag in PTE k, k = 0..3.
#          A PTE slot holds a page when its LEAF bit (16) is set.
# tag = (vpn >> 3) << 3 | size << 1 | 1 (0 = empty line), below 2^48: a
# page whose vpn >> 3 reaches 2^45 is refused.  Way w hashes a tag to
# hv = (tag * K_w mod 2^64) >> 32 and hv to a bucket (hv * NB) >> 32.  An
# entry lives in the new table or, while a resize is in progress and its
# old bucket is at or above P, in the old.
#
# pt_lookup probes, for every size with pages, all three ways (and the old
# table's buckets not yet moved), one line each, and returns the PTE of the
# matching entry if its page is there: no probe waits for another, so a
# hardware walker issues them at once.  pt_map returns the page's PTE in
# its entry, claiming the first empty bucket of the new table for a new
# entry; else 0 (the host then displaces).  pt_unmap clears the PTE (its
# tag bits stay) and frees the entry when its last page goes.
#
# The first instruction of each section loads the region size in bytes; the
# host sets it to the size of the regions the program runs on.

# The region size `bpfvm verify` assumes when run on this file alone; it
# equals the r9 constant each section starts with (the host re-sizes both
# per region).
.object region 64KiB

.hook pt_lookup
    r9 = 65536 ll               # region bytes
    *(u64 *)(r10 - 40) = r1     # ctx
    r6 = *(u64 *)(r1 + 0)       # region: way 0, with the header
    r2 = *(u64 *)(r1 + 16)      # va
    *(u64 *)(r10 - 8) = r2
    r9 -= 64                    # the last line's offset
    r0 = 0
    *(u64 *)(r10 - 16) = r0     # offset of the PTE found (0: none)
    *(u64 *)(r10 - 56) = r0     # the way holding it
    r8 = 0                      # size code
l_size:
    r2 = r8
    r2 <<= 3
    r3 = r6
    r3 += r2
    r2 = *(u64 *)(r3 + 0)       # pages of this size
    if r2 == 0 goto l_next_size
    r2 = r8
    r2 *= 9
    r2 += 12                    # page shift
    r3 = *(u64 *)(r10 - 8)
    r3 >>= r2                   # vpn
    r4 = r3
    r4 &= 7
    r4 <<= 3
    *(u64 *)(r10 - 32) = r4     # the PTE's offset in its entry
    r3 >>= 3                    # cluster
    r2 = r3
    r2 >>= 45
    if r2 != 0 goto l_next_size
    r3 <<= 3
    r2 = r8
    r2 <<= 1
    r3 |= r2
    r3 |= 1
    *(u64 *)(r10 - 24) = r3     # tag
    r7 = r8
    r7 += 1
    r7 <<= 6
    r7 += r6                    # the size's table registers
    r5 = 0                      # probe: way r5 >> 1, table r5 & 1 (0 new, 1 old)
l_probe:
    r2 = 0x9e3779b97f4a7c15 ll
    r3 = r5
    r3 >>= 1
    if r3 == 0 goto l_k
    r2 = 0xc2b2ae3d27d4eb4f ll
    if r3 == 1 goto l_k
    r2 = 0x165667b19e3779f9 ll
l_k:
    r3 = *(u64 *)(r10 - 24)
    r3 *= r2
    r3 >>= 32                   # hv
    r2 = r5
    r2 &= 1
    if r2 != 0 goto l_old
    r4 = *(u64 *)(r7 + 0)       # NB
    r4 <<= 32
    r4 >>= 32
    r0 = r3
    r0 *= r4
    r0 >>= 32                   # bucket
    r2 = *(u64 *)(r7 + 8)       # base
    goto l_line
l_old:
    r4 = *(u64 *)(r7 + 16)      # old NB
    if r4 == 0 goto l_next_probe
    r4 <<= 32
    r4 >>= 32
    r0 = r3
    r0 *= r4
    r0 >>= 32                   # old bucket
    r2 = *(u64 *)(r7 + 32)      # P
    if r0 < r2 goto l_next_probe
    r2 = *(u64 *)(r7 + 24)      # old base
l_line:
    r3 = r0
    r3 <<= 6
    r3 += r2                    # offset of the bucket line in its way's region
    if r3 > r9 goto l_next_probe
    r4 = r5
    r4 >>= 1                    # way
    *(u64 *)(r10 - 48) = r4
    r1 = *(u64 *)(r10 - 40)     # ctx
    r2 = *(u64 *)(r1 + 0)       # way 0: region
    if r4 == 0 goto l_way
    r2 = *(u64 *)(r1 + 32)      # way 1: region1
    if r4 == 1 goto l_way
    r2 = *(u64 *)(r1 + 40)      # way 2: region2
l_way:
    r1 = r2
    r1 += r3
    r4 = *(u64 *)(r1 + 0)       # the entry's tag, from its PTEs' top bits
    r4 >>= 52
    r2 = *(u64 *)(r1 + 8)
    r2 >>= 52
    r2 <<= 12
    r4 |= r2
    r2 = *(u64 *)(r1 + 16)
    r2 >>= 52
    r2 <<= 24
    r4 |= r2
    r2 = *(u64 *)(r1 + 24)
    r2 >>= 52
    r2 <<= 36
    r4 |= r2
    r2 = *(u64 *)(r10 - 24)
    if r4 != r2 goto l_next_probe
    r2 = *(u64 *)(r10 - 32)
    r2 &= 56
    r1 += r2
    r4 = *(u64 *)(r1 + 0)       # the page's PTE, in the same line
    r4 &= 16
    if r4 == 0 goto l_next_probe
    r3 += r2
    *(u64 *)(r10 - 16) = r3
    r4 = *(u64 *)(r10 - 48)
    *(u64 *)(r10 - 56) = r4     # the way holding it
l_next_probe:
    r5 += 1
    if r5 < 6 goto l_probe
l_next_size:
    r8 += 1
    if r8 < 3 goto l_size
    r3 = *(u64 *)(r10 - 16)
    r0 = 0
    if r3 == 0 goto l_out
    r9 += 56
    if r3 > r9 goto l_none
    r4 = *(u64 *)(r10 - 56)
    r1 = *(u64 *)(r10 - 40)     # ctx
    r0 = *(u64 *)(r1 + 0)       # way 0: region
    if r4 == 0 goto l_ret
    r0 = *(u64 *)(r1 + 32)      # way 1: region1
    if r4 == 1 goto l_ret
    r0 = *(u64 *)(r1 + 40)      # way 2: region2
l_ret:
    r0 += r3
    exit
l_none:
    r0 = 0
l_out:
    exit

.hook pt_map
    r9 = 65536 ll               # region bytes
    *(u64 *)(r10 - 40) = r1     # ctx
    r6 = *(u64 *)(r1 + 0)       # region: way 0, with the header
    r7 = *(u64 *)(r1 + 16)      # va
    r8 = *(u32 *)(r1 + 28)      # page shift: 12, 21 or 30
    r0 = 0
    if r8 < 12 goto m_out
    if r8 > 30 goto m_out
    r9 -= 64
    r3 = r7
    r3 >>= r8                   # vpn
    r4 = r3
    r4 &= 7
    r4 <<= 3
    *(u64 *)(r10 - 8) = r4      # the PTE's offset in its entry
    r3 >>= 3
    r2 = r3
    r2 >>= 45
    if r2 != 0 goto m_out       # beyond the tag's range
    r3 <<= 3
    r8 -= 12
    r8 /= 9                     # size code
    r2 = r8
    r2 <<= 1
    r3 |= r2
    r3 |= 1
    *(u64 *)(r10 - 24) = r3     # tag
    *(u64 *)(r10 - 16) = r0     # offset of the key's entry (0: not present)
    *(u64 *)(r10 - 56) = r0     # its way
    *(u64 *)(r10 - 32) = r0     # offset of the first empty bucket (0: none)
    *(u64 *)(r10 - 64) = r0     # its way
    r7 = r8
    r7 += 1
    r7 <<= 6
    r7 += r6                    # the size's table registers
    r5 = 0
m_probe:
    r2 = 0x9e3779b97f4a7c15 ll
    r3 = r5
    r3 >>= 1
    if r3 == 0 goto m_k
    r2 = 0xc2b2ae3d27d4eb4f ll
    if r3 == 1 goto m_k
    r2 = 0x165667b19e3779f9 ll
m_k:
    r3 = *(u64 *)(r10 - 24)
    r3 *= r2
    r3 >>= 32
    r2 = r5
    r2 &= 1
    if r2 != 0 goto m_old
    r4 = *(u64 *)(r7 + 0)
    r4 <<= 32
    r4 >>= 32
    r0 = r3
    r0 *= r4
    r0 >>= 32
    r2 = *(u64 *)(r7 + 8)
    goto m_line
m_old:
    r4 = *(u64 *)(r7 + 16)
    if r4 == 0 goto m_next_probe
    r4 <<= 32
    r4 >>= 32
    r0 = r3
    r0 *= r4
    r0 >>= 32
    r2 = *(u64 *)(r7 + 32)
    if r0 < r2 goto m_next_probe
    r2 = *(u64 *)(r7 + 24)
m_line:
    r3 = r0
    r3 <<= 6
    r3 += r2                    # offset of the bucket line in its way's region
    if r3 > r9 goto m_next_probe
    r4 = r5
    r4 >>= 1                    # way
    *(u64 *)(r10 - 48) = r4
    r1 = *(u64 *)(r10 - 40)     # ctx
    r2 = *(u64 *)(r1 + 0)       # way 0: region
    if r4 == 0 goto m_way
    r2 = *(u64 *)(r1 + 32)      # way 1: region1
    if r4 == 1 goto m_way
    r2 = *(u64 *)(r1 + 40)      # way 2: region2
m_way:
    r1 = r2
    r1 += r3
    r4 = *(u64 *)(r1 + 0)       # the entry's tag
    r4 >>= 52
    r2 = *(u64 *)(r1 + 8)
    r2 >>= 52
    r2 <<= 12
    r4 |= r2
    r2 = *(u64 *)(r1 + 16)
    r2 >>= 52
    r2 <<= 24
    r4 |= r2
    r2 = *(u64 *)(r1 + 24)
    r2 >>= 52
    r2 <<= 36
    r4 |= r2
    r2 = *(u64 *)(r10 - 24)
    if r4 == r2 goto m_found
    if r4 != 0 goto m_next_probe
    if r5 & 1 goto m_next_probe     # new entries go to the new table only
    r2 = *(u64 *)(r10 - 32)
    if r2 != 0 goto m_next_probe
    *(u64 *)(r10 - 32) = r3
    r2 = *(u64 *)(r10 - 48)
    *(u64 *)(r10 - 64) = r2     # its way
    goto m_next_probe
m_found:
    *(u64 *)(r10 - 16) = r3
    r2 = *(u64 *)(r10 - 48)
    *(u64 *)(r10 - 56) = r2     # its way
    goto m_done
m_next_probe:
    r5 += 1
    if r5 < 6 goto m_probe
m_done:
    r3 = *(u64 *)(r10 - 16)
    if r3 == 0 goto m_insert
    if r3 > r9 goto m_fail
    r4 = *(u64 *)(r10 - 56)
    r1 = *(u64 *)(r10 - 40)     # ctx
    r0 = *(u64 *)(r1 + 0)
    if r4 == 0 goto m_ret
    r0 = *(u64 *)(r1 + 32)
    if r4 == 1 goto m_ret
    r0 = *(u64 *)(r1 + 40)
m_ret:
    r0 += r3
    r2 = *(u64 *)(r10 - 8)
    r2 &= 56
    r0 += r2                    # the page's PTE
    r3 = *(u64 *)(r0 + 0)
    r2 = r3
    r2 &= 16
    if r2 != 0 goto m_out       # already mapped
    goto m_claim
m_insert:
    r3 = *(u64 *)(r10 - 32)
    if r3 == 0 goto m_fail      # three buckets taken: the host displaces
    if r3 > r9 goto m_fail
    r4 = *(u64 *)(r10 - 64)
    r1 = *(u64 *)(r10 - 40)     # ctx
    r0 = *(u64 *)(r1 + 0)
    if r4 == 0 goto m_new
    r0 = *(u64 *)(r1 + 32)
    if r4 == 1 goto m_new
    r0 = *(u64 *)(r1 + 40)
m_new:
    r0 += r3
    r3 = *(u64 *)(r10 - 24)     # the tag, 12 bits into each of PTEs 0..3
    r2 = r3
    r2 <<= 52
    *(u64 *)(r0 + 0) = r2
    r2 = r3
    r2 >>= 12
    r2 <<= 52
    *(u64 *)(r0 + 8) = r2
    r2 = r3
    r2 >>= 24
    r2 <<= 52
    *(u64 *)(r0 + 16) = r2
    r2 = r3
    r2 >>= 36
    r2 <<= 52
    *(u64 *)(r0 + 24) = r2
    r2 = r8
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 32)      # entries in use
    r2 += 1
    *(u64 *)(r1 + 32) = r2
    r2 = *(u64 *)(r10 - 8)
    r2 &= 56
    r0 += r2                    # the page's PTE
    r3 = *(u64 *)(r0 + 0)
m_claim:
    r3 >>= 52                   # keep the tag bits
    r3 <<= 52
    r2 = r8
    r2 <<= 2
    r2 |= 16                    # PTE_LEAF | size, not present yet
    r3 |= r2
    *(u64 *)(r0 + 0) = r3
    r2 = r8
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 0)       # pages mapped
    r2 += 1
    *(u64 *)(r1 + 0) = r2
    exit
m_fail:
    r0 = 0
m_out:
    exit

.hook pt_unmap
    r9 = 65536 ll               # region bytes
    *(u64 *)(r10 - 40) = r1     # ctx
    r6 = *(u64 *)(r1 + 0)       # region: way 0, with the header
    r2 = *(u64 *)(r1 + 16)      # va
    *(u64 *)(r10 - 8) = r2
    r9 -= 64
    r8 = 0                      # size code
u_size:
    r2 = r8
    r2 <<= 3
    r3 = r6
    r3 += r2
    r2 = *(u64 *)(r3 + 0)
    if r2 == 0 goto u_next_size
    r2 = r8
    r2 *= 9
    r2 += 12
    r3 = *(u64 *)(r10 - 8)
    r3 >>= r2
    r4 = r3
    r4 &= 7
    r4 <<= 3
    *(u64 *)(r10 - 32) = r4     # the PTE's offset in its entry
    r3 >>= 3
    r2 = r3
    r2 >>= 45
    if r2 != 0 goto u_next_size
    r3 <<= 3
    r2 = r8
    r2 <<= 1
    r3 |= r2
    r3 |= 1
    *(u64 *)(r10 - 24) = r3     # tag
    r7 = r8
    r7 += 1
    r7 <<= 6
    r7 += r6
    r5 = 0
u_probe:
    r2 = 0x9e3779b97f4a7c15 ll
    r3 = r5
    r3 >>= 1
    if r3 == 0 goto u_k
    r2 = 0xc2b2ae3d27d4eb4f ll
    if r3 == 1 goto u_k
    r2 = 0x165667b19e3779f9 ll
u_k:
    r3 = *(u64 *)(r10 - 24)
    r3 *= r2
    r3 >>= 32
    r2 = r5
    r2 &= 1
    if r2 != 0 goto u_old
    r4 = *(u64 *)(r7 + 0)
    r4 <<= 32
    r4 >>= 32
    r0 = r3
    r0 *= r4
    r0 >>= 32
    r2 = *(u64 *)(r7 + 8)
    goto u_line
u_old:
    r4 = *(u64 *)(r7 + 16)
    if r4 == 0 goto u_next_probe
    r4 <<= 32
    r4 >>= 32
    r0 = r3
    r0 *= r4
    r0 >>= 32
    r2 = *(u64 *)(r7 + 32)
    if r0 < r2 goto u_next_probe
    r2 = *(u64 *)(r7 + 24)
u_line:
    r3 = r0
    r3 <<= 6
    r3 += r2                    # offset of the bucket line in its way's region
    if r3 > r9 goto u_next_probe
    r4 = r5
    r4 >>= 1                    # way
    r1 = *(u64 *)(r10 - 40)     # ctx
    r2 = *(u64 *)(r1 + 0)       # way 0: region
    if r4 == 0 goto u_way
    r2 = *(u64 *)(r1 + 32)      # way 1: region1
    if r4 == 1 goto u_way
    r2 = *(u64 *)(r1 + 40)      # way 2: region2
u_way:
    r1 = r2
    r1 += r3
    r4 = *(u64 *)(r1 + 0)       # the entry's tag
    r4 >>= 52
    r2 = *(u64 *)(r1 + 8)
    r2 >>= 52
    r2 <<= 12
    r4 |= r2
    r2 = *(u64 *)(r1 + 16)
    r2 >>= 52
    r2 <<= 24
    r4 |= r2
    r2 = *(u64 *)(r1 + 24)
    r2 >>= 52
    r2 <<= 36
    r4 |= r2
    r2 = *(u64 *)(r10 - 24)
    if r4 != r2 goto u_next_probe
    r2 = *(u64 *)(r10 - 32)
    r2 &= 56
    r3 = r1
    r3 += r2
    r4 = *(u64 *)(r3 + 0)
    r0 = r4
    r0 &= 16
    if r0 != 0 goto u_remove
u_next_probe:
    r5 += 1
    if r5 < 6 goto u_probe
u_next_size:
    r8 += 1
    if r8 < 3 goto u_size
    r0 = 1
    exit
u_remove:
    r4 >>= 52                   # clear the PTE, keep the tag bits
    r4 <<= 52
    *(u64 *)(r3 + 0) = r4
    r2 = r8
    r2 <<= 3
    r3 = r6
    r3 += r2
    r2 = *(u64 *)(r3 + 0)
    r2 -= 1
    *(u64 *)(r3 + 0) = r2
    r2 = *(u64 *)(r1 + 0)       # any page left in the entry?
    r4 = *(u64 *)(r1 + 8)
    r2 |= r4
    r4 = *(u64 *)(r1 + 16)
    r2 |= r4
    r4 = *(u64 *)(r1 + 24)
    r2 |= r4
    r4 = *(u64 *)(r1 + 32)
    r2 |= r4
    r4 = *(u64 *)(r1 + 40)
    r2 |= r4
    r4 = *(u64 *)(r1 + 48)
    r2 |= r4
    r4 = *(u64 *)(r1 + 56)
    r2 |= r4
    r2 &= 16
    r0 = 0
    if r2 != 0 goto u_out
    *(u64 *)(r1 + 0) = r0       # the last page went: free the entry
    *(u64 *)(r1 + 8) = r0
    *(u64 *)(r1 + 16) = r0
    *(u64 *)(r1 + 24) = r0
    *(u64 *)(r1 + 32) = r0
    *(u64 *)(r1 + 40) = r0
    *(u64 *)(r1 + 48) = r0
    *(u64 *)(r1 + 56) = r0
    r2 = *(u64 *)(r3 + 32)      # entries in use
    r2 -= 1
    *(u64 *)(r3 + 32) = r2
u_out:
    exit
