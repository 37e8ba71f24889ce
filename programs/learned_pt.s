# A learned page table: piecewise-linear models over the virtual address
# space predict where a page's PTE lives; a lookup reads the predicted
# cache line and at most the next one.
#
# Three programs, one per .hook section (pt_map, pt_unmap, pt_lookup);
# mmcore.progpt assembles each section on its own.  The models are fitted
# in user space by mmcore.pt_trainer (which mirrors the prediction below
# exactly) and refitted as mappings change; these programs only read them.
#
# Region layout (bytes):
#   0      header: +0/+8/+16 pages mapped per size code, +24 end of the
#          metadata (17536), +32 number of segments, +40 directory base
#          (vpn), +48 directory shift
#   64     directory: 513 u16; entry i (< 512) = the last segment starting
#          at or before vpn base + (i << shift), entry 512 = the last segment
#   1152   segments: 512 records of 32 bytes, sorted by first vpn: +0 first
#          vpn, +8 span (pages), +16 first slot line, +24 slope (lines per
#          page, 16.16 fixed point)
#   17536  slot lines to the end of the region: four 16-byte slots per
#          64-byte line, tag (8) then PTE (8); tag = vpn << 4 | size << 2 | 2
#          (0 = empty), size 0 4 KiB / 1 2 MiB / 2 1 GiB, vpn = the page's
#          first 4 KiB page number.
#
# Prediction for key vpn k: segment g = the last one starting at or before
# k (or the first), found by a binary search between directory entries i
# and i + 1, i = (k - base) >> shift clamped to 511; line =
# base + (min(max(k - lo, 0), span) * slope >> 16), clamped to the slot
# lines so that the window (that line and the next) fits.  pt_map takes the
# first empty slot of the window and returns 0 when it is full: the host then
# refits the models (or grows the region).  A lookup tries 4 KiB pages first,
# then 2 MiB and 1 GiB when the header says such pages exist.
#
# The first instruction of each section loads the region size in bytes; the
# host sets it to the size of the region the program runs on.

# The region size `bpfvm verify` assumes when run on this file alone; it
# equals the r9 constant each section starts with (the host re-sizes both
# per region).
.object region 64KiB

.hook pt_lookup
    r9 = 65536 ll               # region bytes
    r6 = *(u64 *)(r1 + 0)       # region
    r2 = *(u64 *)(r1 + 16)      # va
    *(u64 *)(r10 - 8) = r2
    r9 >>= 6
    r9 -= 2                     # last line a window may start at
    r8 = 0                      # size code
l_size:
    if r8 == 0 goto l_key
    r2 = r8
    r2 <<= 3
    r3 = r6
    r3 += r2
    r2 = *(u64 *)(r3 + 0)       # pages of this size
    if r2 == 0 goto l_next
l_key:
    r2 = r8
    r2 *= 9
    r2 += 12
    r7 = *(u64 *)(r10 - 8)      # va
    r3 = r7
    r3 >>= r2
    r3 <<= r2
    r3 >>= 12                   # key: the page's first vpn
    # l: key vpn in r3 -> r2 = pointer to the window's first line
    r4 = *(u64 *)(r6 + 40)      # directory base
    r5 = 0
    if r3 < r4 goto l_dir
    r5 = r3
    r5 -= r4
    r4 = *(u64 *)(r6 + 48)      # directory shift
    r4 &= 63
    r5 >>= r4
l_dir:
    if r5 <= 511 goto l_dir_ok
    r5 = 511
l_dir_ok:
    r5 <<= 1
    r4 = r6
    r4 += r5
    r5 = *(u16 *)(r4 + 64)      # first candidate segment
    r4 = *(u16 *)(r4 + 66)      # last candidate segment
    if r5 <= 511 goto l_lo_ok
    r5 = 511
l_lo_ok:
    r1 = 0
l_bs:
    if r5 >= r4 goto l_seg     # binary search: last segment starting at or before the key
    if r4 > 511 goto l_seg
    r0 = r5
    r0 += r4
    r0 += 1
    r0 >>= 1                    # mid
    r2 = r0
    r2 <<= 5
    r7 = r6
    r7 += r2
    r2 = *(u64 *)(r7 + 1152)    # its first vpn
    if r2 > r3 goto l_left
    r5 = r0
    goto l_bs_next
l_left:
    r4 = r0
    r4 -= 1
l_bs_next:
    r1 += 1
    if r1 < 10 goto l_bs
l_seg:
    r0 = r5
    r0 <<= 5
    r2 = r6
    r2 += r0                    # segment at r2 + 1152
    r0 = *(u64 *)(r2 + 1152)    # first vpn
    r1 = 0
    if r3 < r0 goto l_d
    r1 = r3
    r1 -= r0
l_d:
    r0 = *(u64 *)(r2 + 1160)    # span
    if r1 <= r0 goto l_span
    r1 = r0
l_span:
    r0 = *(u64 *)(r2 + 1176)    # slope
    r1 *= r0
    r1 >>= 16
    r0 = *(u64 *)(r2 + 1168)    # first line
    r1 += r0
    if r1 <= r9 goto l_hi
    r1 = r9
l_hi:
    if r1 >= 274 goto l_lo
    r1 = 274
l_lo:
    r1 <<= 6
    r2 = r6
    r2 += r1                    # the predicted line
    r3 <<= 4
    r0 = r8
    r0 <<= 2
    r3 |= r0
    r3 |= 2                     # r3 = tag
    r0 = *(u64 *)(r2 + 0)
    r1 = 0
    if r0 == r3 goto l_hit
    r0 = *(u64 *)(r2 + 16)
    r1 = 16
    if r0 == r3 goto l_hit
    r0 = *(u64 *)(r2 + 32)
    r1 = 32
    if r0 == r3 goto l_hit
    r0 = *(u64 *)(r2 + 48)
    r1 = 48
    if r0 == r3 goto l_hit
    r0 = *(u64 *)(r2 + 64)
    r1 = 64
    if r0 == r3 goto l_hit
    r0 = *(u64 *)(r2 + 80)
    r1 = 80
    if r0 == r3 goto l_hit
    r0 = *(u64 *)(r2 + 96)
    r1 = 96
    if r0 == r3 goto l_hit
    r0 = *(u64 *)(r2 + 112)
    r1 = 112
    if r0 == r3 goto l_hit
l_next:
    r8 += 1
    if r8 < 3 goto l_size
    r0 = 0
    exit
l_hit:
    r0 = r2
    r0 += r1
    r0 += 8
    exit

.hook pt_map
    r9 = 65536 ll               # region bytes
    r6 = *(u64 *)(r1 + 0)       # region
    r7 = *(u64 *)(r1 + 16)      # va
    r8 = *(u32 *)(r1 + 28)      # page shift: 12, 21 or 30
    r9 >>= 6
    r9 -= 2                     # last line a window may start at
    r0 = 0
    if r8 < 12 goto m_out
    if r8 > 30 goto m_out
    r3 = r7
    r3 >>= r8
    r3 <<= r8
    r3 >>= 12                   # key: the page's first vpn
    r8 -= 12
    r8 /= 9                     # size code
    # m: key vpn in r3 -> r2 = pointer to the window's first line
    r4 = *(u64 *)(r6 + 40)      # directory base
    r5 = 0
    if r3 < r4 goto m_dir
    r5 = r3
    r5 -= r4
    r4 = *(u64 *)(r6 + 48)      # directory shift
    r4 &= 63
    r5 >>= r4
m_dir:
    if r5 <= 511 goto m_dir_ok
    r5 = 511
m_dir_ok:
    r5 <<= 1
    r4 = r6
    r4 += r5
    r5 = *(u16 *)(r4 + 64)      # first candidate segment
    r4 = *(u16 *)(r4 + 66)      # last candidate segment
    if r5 <= 511 goto m_lo_ok
    r5 = 511
m_lo_ok:
    r1 = 0
m_bs:
    if r5 >= r4 goto m_seg     # binary search: last segment starting at or before the key
    if r4 > 511 goto m_seg
    r0 = r5
    r0 += r4
    r0 += 1
    r0 >>= 1                    # mid
    r2 = r0
    r2 <<= 5
    r7 = r6
    r7 += r2
    r2 = *(u64 *)(r7 + 1152)    # its first vpn
    if r2 > r3 goto m_left
    r5 = r0
    goto m_bs_next
m_left:
    r4 = r0
    r4 -= 1
m_bs_next:
    r1 += 1
    if r1 < 10 goto m_bs
m_seg:
    r0 = r5
    r0 <<= 5
    r2 = r6
    r2 += r0                    # segment at r2 + 1152
    r0 = *(u64 *)(r2 + 1152)    # first vpn
    r1 = 0
    if r3 < r0 goto m_d
    r1 = r3
    r1 -= r0
m_d:
    r0 = *(u64 *)(r2 + 1160)    # span
    if r1 <= r0 goto m_span
    r1 = r0
m_span:
    r0 = *(u64 *)(r2 + 1176)    # slope
    r1 *= r0
    r1 >>= 16
    r0 = *(u64 *)(r2 + 1168)    # first line
    r1 += r0
    if r1 <= r9 goto m_hi
    r1 = r9
m_hi:
    if r1 >= 274 goto m_lo
    r1 = 274
m_lo:
    r1 <<= 6
    r2 = r6
    r2 += r1                    # the predicted line
    r3 <<= 4
    r0 = r8
    r0 <<= 2
    r3 |= r0
    r3 |= 2                     # r3 = tag
    r4 = 0                      # first empty slot + 1 (0: none)
    r0 = *(u64 *)(r2 + 0)
    r1 = 0
    if r0 == r3 goto m_found
    if r0 != 0 goto m_n0
    if r4 != 0 goto m_n0
    r4 = 1
m_n0:
    r0 = *(u64 *)(r2 + 16)
    r1 = 16
    if r0 == r3 goto m_found
    if r0 != 0 goto m_n1
    if r4 != 0 goto m_n1
    r4 = 17
m_n1:
    r0 = *(u64 *)(r2 + 32)
    r1 = 32
    if r0 == r3 goto m_found
    if r0 != 0 goto m_n2
    if r4 != 0 goto m_n2
    r4 = 33
m_n2:
    r0 = *(u64 *)(r2 + 48)
    r1 = 48
    if r0 == r3 goto m_found
    if r0 != 0 goto m_n3
    if r4 != 0 goto m_n3
    r4 = 49
m_n3:
    r0 = *(u64 *)(r2 + 64)
    r1 = 64
    if r0 == r3 goto m_found
    if r0 != 0 goto m_n4
    if r4 != 0 goto m_n4
    r4 = 65
m_n4:
    r0 = *(u64 *)(r2 + 80)
    r1 = 80
    if r0 == r3 goto m_found
    if r0 != 0 goto m_n5
    if r4 != 0 goto m_n5
    r4 = 81
m_n5:
    r0 = *(u64 *)(r2 + 96)
    r1 = 96
    if r0 == r3 goto m_found
    if r0 != 0 goto m_n6
    if r4 != 0 goto m_n6
    r4 = 97
m_n6:
    r0 = *(u64 *)(r2 + 112)
    r1 = 112
    if r0 == r3 goto m_found
    if r0 != 0 goto m_n7
    if r4 != 0 goto m_n7
    r4 = 113
m_n7:
    r0 = 0
    if r4 == 0 goto m_out       # window full: the host refits the models
    r4 -= 1
    r2 += r4                    # the slot
    *(u64 *)(r2 + 0) = r3
    r0 = r8
    r0 <<= 2
    r0 |= 16                    # PTE_LEAF | size, not present yet
    *(u64 *)(r2 + 8) = r0
    r0 = r8
    r0 <<= 3
    r1 = r6
    r1 += r0
    r0 = *(u64 *)(r1 + 0)
    r0 += 1
    *(u64 *)(r1 + 0) = r0
    r0 = r2
    r0 += 8
m_out:
    exit
m_found:
    r0 = r2
    r0 += r1
    r0 += 8
    exit

.hook pt_unmap
    r9 = 65536 ll               # region bytes
    r6 = *(u64 *)(r1 + 0)       # region
    r2 = *(u64 *)(r1 + 16)      # va
    *(u64 *)(r10 - 8) = r2
    r9 >>= 6
    r9 -= 2                     # last line a window may start at
    r8 = 0                      # size code
u_size:
    r2 = r8
    r2 <<= 3
    r3 = r6
    r3 += r2
    r2 = *(u64 *)(r3 + 0)       # pages of this size
    if r2 == 0 goto u_next
    r2 = r8
    r2 *= 9
    r2 += 12
    r7 = *(u64 *)(r10 - 8)      # va
    r3 = r7
    r3 >>= r2
    r3 <<= r2
    r3 >>= 12                   # key: the page's first vpn
    # u: key vpn in r3 -> r2 = pointer to the window's first line
    r4 = *(u64 *)(r6 + 40)      # directory base
    r5 = 0
    if r3 < r4 goto u_dir
    r5 = r3
    r5 -= r4
    r4 = *(u64 *)(r6 + 48)      # directory shift
    r4 &= 63
    r5 >>= r4
u_dir:
    if r5 <= 511 goto u_dir_ok
    r5 = 511
u_dir_ok:
    r5 <<= 1
    r4 = r6
    r4 += r5
    r5 = *(u16 *)(r4 + 64)      # first candidate segment
    r4 = *(u16 *)(r4 + 66)      # last candidate segment
    if r5 <= 511 goto u_lo_ok
    r5 = 511
u_lo_ok:
    r1 = 0
u_bs:
    if r5 >= r4 goto u_seg     # binary search: last segment starting at or before the key
    if r4 > 511 goto u_seg
    r0 = r5
    r0 += r4
    r0 += 1
    r0 >>= 1                    # mid
    r2 = r0
    r2 <<= 5
    r7 = r6
    r7 += r2
    r2 = *(u64 *)(r7 + 1152)    # its first vpn
    if r2 > r3 goto u_left
    r5 = r0
    goto u_bs_next
u_left:
    r4 = r0
    r4 -= 1
u_bs_next:
    r1 += 1
    if r1 < 10 goto u_bs
u_seg:
    r0 = r5
    r0 <<= 5
    r2 = r6
    r2 += r0                    # segment at r2 + 1152
    r0 = *(u64 *)(r2 + 1152)    # first vpn
    r1 = 0
    if r3 < r0 goto u_d
    r1 = r3
    r1 -= r0
u_d:
    r0 = *(u64 *)(r2 + 1160)    # span
    if r1 <= r0 goto u_span
    r1 = r0
u_span:
    r0 = *(u64 *)(r2 + 1176)    # slope
    r1 *= r0
    r1 >>= 16
    r0 = *(u64 *)(r2 + 1168)    # first line
    r1 += r0
    if r1 <= r9 goto u_hi
    r1 = r9
u_hi:
    if r1 >= 274 goto u_lo
    r1 = 274
u_lo:
    r1 <<= 6
    r2 = r6
    r2 += r1                    # the predicted line
    r3 <<= 4
    r0 = r8
    r0 <<= 2
    r3 |= r0
    r3 |= 2                     # r3 = tag
    r0 = *(u64 *)(r2 + 0)
    r1 = 0
    if r0 == r3 goto u_hit
    r0 = *(u64 *)(r2 + 16)
    r1 = 16
    if r0 == r3 goto u_hit
    r0 = *(u64 *)(r2 + 32)
    r1 = 32
    if r0 == r3 goto u_hit
    r0 = *(u64 *)(r2 + 48)
    r1 = 48
    if r0 == r3 goto u_hit
    r0 = *(u64 *)(r2 + 64)
    r1 = 64
    if r0 == r3 goto u_hit
    r0 = *(u64 *)(r2 + 80)
    r1 = 80
    if r0 == r3 goto u_hit
    r0 = *(u64 *)(r2 + 96)
    r1 = 96
    if r0 == r3 goto u_hit
    r0 = *(u64 *)(r2 + 112)
    r1 = 112
    if r0 == r3 goto u_hit
u_next:
    r8 += 1
    if r8 < 3 goto u_size
    r0 = 1
    exit
u_hit:
    r2 += r1                    # the slot
    r0 = 0
    *(u64 *)(r2 + 0) = r0
    *(u64 *)(r2 + 8) = r0
    r0 = r8
    r0 <<= 3
    r1 = r6
    r1 += r0
    r0 = *(u64 *)(r1 + 0)
    r0 -= 1
    *(u64 *)(r1 + 0) = r0
    r0 = 0
    exit
