# An elastic cuckoo page table without clustered entries (one tag per page;
# after ECPT, Skarlatos et al., ASPLOS'20, which clusters: see cuckoo_pt.s):
# one 3-ary cuckoo hash table per page size, probed in parallel.
#
# Three programs, one per .hook section (pt_map, pt_unmap, pt_lookup).  The
# host (mmcore.pagetables.ecpt) does what ECPT leaves to the OS: cuckoo
# displacement when all three candidate buckets are full, and elastic
# resizing (a new table of twice or half the buckets, filled gradually while the
# old one is still probed).  These programs only read the table registers.
#
# Regions: one per way, all of one size (ctx->region for way 0,
# ctx->region1 for way 1, ctx->region2 for way 2).  Layout (bytes):
#   0      of way 0's region, line 0: +0/+8/+16 pages mapped per size code,
#          +24 end of the metadata (256); the other regions leave 0..255
#          unused
#   64     of way 0's region, line 1 + s, the table registers of size code s
#          (0 4 KiB, 1 2 MiB, 2 1 GiB): +0 NB buckets per way, +8 base offset
#          of the table, +16 old NB (0: no resize in progress), +24 old
#          base, +32 P, the rehash pointer (old buckets below P are already
#          moved)
#   256..  tables, placed by the host.  Way w of a table (base, NB) is NB
#          bucket lines from base in way w's region; a bucket is one
#          64-byte line of four 16-byte slots: tag (8) then PTE (8).
# tag = vpn << 4 | size << 2 | 2, vpn = the page's first 4 KiB page number
# (0 = empty).  Way w hashes a tag to hv = (tag * K_w mod 2^64) >> 32 and
# hv to a bucket (hv * NB) >> 32.  A key lives in the new table or, while a
# resize is in progress and its old bucket is at or above P, in the old.
#
# pt_lookup probes, for every size with pages, all three ways (and the
# old table's buckets not yet moved) and returns the matching slot: no
# probe waits for another, so a hardware walker issues them at once.
# pt_map returns the key's slot if present, else the first empty slot of
# its three buckets in the new table, else 0 (the host then displaces).
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
    r3 >>= r2
    r3 <<= r2
    r3 >>= 12
    r3 <<= 4
    r2 = r8
    r2 <<= 2
    r3 |= r2
    r3 |= 2
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
    r4 = *(u64 *)(r10 - 24)     # tag
    r2 = *(u64 *)(r1 + 0)
    if r2 != r4 goto l_s1
    r3 += 8
    goto l_hit
l_s1:
    r2 = *(u64 *)(r1 + 16)
    if r2 != r4 goto l_s2
    r3 += 24
    goto l_hit
l_s2:
    r2 = *(u64 *)(r1 + 32)
    if r2 != r4 goto l_s3
    r3 += 40
    goto l_hit
l_s3:
    r2 = *(u64 *)(r1 + 48)
    if r2 != r4 goto l_next_probe
    r3 += 56
l_hit:
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
    r1 = 0
    r0 = 0
    if r8 < 12 goto m_out
    if r8 > 30 goto m_out
    r9 -= 64
    r3 = r7
    r3 >>= r8
    r3 <<= r8
    r3 >>= 12
    r3 <<= 4
    r8 -= 12
    r8 /= 9                     # size code
    r2 = r8
    r2 <<= 2
    r3 |= r2
    r3 |= 2
    *(u64 *)(r10 - 24) = r3     # tag
    *(u64 *)(r10 - 16) = r0     # offset of the key's slot (0: not present)
    *(u64 *)(r10 - 56) = r0     # its way
    *(u64 *)(r10 - 32) = r0     # offset of the first empty slot (0: none)
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
    r4 = *(u64 *)(r10 - 24)     # tag
    r2 = *(u64 *)(r1 + 0)
    r0 = r3
    r0 += 0
    if r2 == r4 goto m_found
    if r2 != 0 goto m_e0
    if r5 & 1 goto m_e0           # new keys go to the new table only
    r2 = *(u64 *)(r10 - 32)
    if r2 != 0 goto m_e0
    *(u64 *)(r10 - 32) = r0
    r2 = *(u64 *)(r10 - 48)
    *(u64 *)(r10 - 64) = r2     # its way
m_e0:
    r2 = *(u64 *)(r1 + 16)
    r0 = r3
    r0 += 16
    if r2 == r4 goto m_found
    if r2 != 0 goto m_e1
    if r5 & 1 goto m_e1           # new keys go to the new table only
    r2 = *(u64 *)(r10 - 32)
    if r2 != 0 goto m_e1
    *(u64 *)(r10 - 32) = r0
    r2 = *(u64 *)(r10 - 48)
    *(u64 *)(r10 - 64) = r2     # its way
m_e1:
    r2 = *(u64 *)(r1 + 32)
    r0 = r3
    r0 += 32
    if r2 == r4 goto m_found
    if r2 != 0 goto m_e2
    if r5 & 1 goto m_e2           # new keys go to the new table only
    r2 = *(u64 *)(r10 - 32)
    if r2 != 0 goto m_e2
    *(u64 *)(r10 - 32) = r0
    r2 = *(u64 *)(r10 - 48)
    *(u64 *)(r10 - 64) = r2     # its way
m_e2:
    r2 = *(u64 *)(r1 + 48)
    r0 = r3
    r0 += 48
    if r2 == r4 goto m_found
    if r2 != 0 goto m_e3
    if r5 & 1 goto m_e3           # new keys go to the new table only
    r2 = *(u64 *)(r10 - 32)
    if r2 != 0 goto m_e3
    *(u64 *)(r10 - 32) = r0
    r2 = *(u64 *)(r10 - 48)
    *(u64 *)(r10 - 64) = r2     # its way
m_e3:
    goto m_next_probe
m_found:
    *(u64 *)(r10 - 16) = r0
    r2 = *(u64 *)(r10 - 48)
    *(u64 *)(r10 - 56) = r2     # its way
    goto m_done
m_next_probe:
    r5 += 1
    if r5 < 6 goto m_probe
m_done:
    r3 = *(u64 *)(r10 - 16)
    r9 += 48
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
    r0 += 8
    exit
m_insert:
    r3 = *(u64 *)(r10 - 32)
    if r3 == 0 goto m_fail      # three buckets full: the host displaces
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
    r3 = *(u64 *)(r10 - 24)
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
    exit
m_fail:
m_out:
    r0 = 0
    exit

.hook pt_unmap
    r9 = 65536 ll               # region bytes
    *(u64 *)(r10 - 40) = r1     # ctx
    r6 = *(u64 *)(r1 + 0)       # region: way 0, with the header
    r2 = *(u64 *)(r1 + 16)      # va
    *(u64 *)(r10 - 8) = r2
    r1 = 0
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
    r3 <<= r2
    r3 >>= 12
    r3 <<= 4
    r2 = r8
    r2 <<= 2
    r3 |= r2
    r3 |= 2
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
    *(u64 *)(r10 - 48) = r4
    r1 = *(u64 *)(r10 - 40)     # ctx
    r2 = *(u64 *)(r1 + 0)       # way 0: region
    if r4 == 0 goto u_way
    r2 = *(u64 *)(r1 + 32)      # way 1: region1
    if r4 == 1 goto u_way
    r2 = *(u64 *)(r1 + 40)      # way 2: region2
u_way:
    r1 = r2
    r1 += r3
    r4 = *(u64 *)(r10 - 24)
    r2 = *(u64 *)(r1 + 0)
    r0 = 0
    if r2 == r4 goto u_remove
    r2 = *(u64 *)(r1 + 16)
    r0 = 16
    if r2 == r4 goto u_remove
    r2 = *(u64 *)(r1 + 32)
    r0 = 32
    if r2 == r4 goto u_remove
    r2 = *(u64 *)(r1 + 48)
    r0 = 48
    if r2 == r4 goto u_remove
u_next_probe:
    r5 += 1
    if r5 < 6 goto u_probe
u_next_size:
    r8 += 1
    if r8 < 3 goto u_size
    r0 = 1
    exit
u_remove:
    r1 += r0
    r2 = 0
    *(u64 *)(r1 + 0) = r2
    *(u64 *)(r1 + 8) = r2
    r2 = r8
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 0)
    r2 -= 1
    *(u64 *)(r1 + 0) = r2
    r0 = 0
    exit
