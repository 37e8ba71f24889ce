# A learned page table after LVM (Learned Virtual Memory, Zhao et al., MICRO'25):
# a hierarchy of small linear models -- a root model choosing an internal
# node, the node's model choosing a leaf, leaf models predicting a slot with
# a bounded error --, gapped leaves, and leaves kept in several small regions.
#
# Three programs, one per .hook section (pt_map, pt_unmap, pt_lookup).  The
# host (mmcore.pagetables.lvm) trains the models -- the whole index at
# build, one leaf (and the node above it) when pt_map finds its window
# full -- and writes them into the first region; these programs only read
# them.
#
# Regions: every region of the table has region_size bytes; ctx->region is
# the root region, ctx->region1 .. ctx->region7 the others (a leaf names
# its region by index 0..7).  Root region layout (bytes):
#   0      +0/+8/+16 pages mapped per size code, +24 leaves L (1..1024),
#          +32 root lo (vpn), +40 root slope (8.24 nodes per unit),
#          +48 root shift (a unit is 2^shift pages), +56 root error bound
#   64     N internal nodes (1..32)
#   128    node bounds: N u64, the first vpn of each node, ascending, 0 first
#   384    node records, 32 bytes each: +0 lo (vpn), +8 slope (8.24 leaves
#          per unit), +16 shift (low 32 bits) | error bound (high 32 bits),
#          +24 first leaf (low 32 bits) | leaves (high 32 bits)
#   1408   bounds: L u64, the first vpn of each leaf, ascending, bounds[0] = 0
#   9600   leaf records, 32 bytes each: +0 lo (vpn), +8 slope (16.16 slots
#          per page, low 32 bits) | error bound (high 32 bits, <= 4),
#          +16 slots (low 32 bits) | region index (high 32 bits),
#          +24 offset of the leaf's slot array in its region
#   42368  leaf slot arrays may follow (the root region is region 0)
# A slot is 16 bytes: tag (8) then PTE (8); tag = vpn << 4 | size << 2 | 2,
# vpn = the page's first 4 KiB page number (0 = empty slot).
#
# Walk: the root predicts node q = ((k - lo) >> shift) * slope >> 24 (at
# most N - 1); the node is the last with node bounds[j] <= k among
# q - err - 1 .. q + err + 1 (binary search).  The node predicts leaf
# first + ((k - lo) >> shift) * slope >> 24 (within its leaves); the leaf
# is the last with bounds[i] <= k among that prediction +- (err + 1),
# within the node's leaves.  The leaf predicts slot s = (k - lo) * slope >> 16
# (clamped to its slots); the key is in s, s + 1, s - 1, s + 2, s - 2, ..
# up to the leaf's error bound (the order pt_map fills empty slots in).
# No slot load depends on another, and the model loads depend on no
# region load but the models above them, so a walker with the models
# cached makes one access.
#
# The first instruction of each section loads the region size in bytes; the
# host sets it to the size of the regions the program runs on.

# The region size `bpfvm verify` assumes when run on this file alone; it
# equals the r9 constant each section starts with.
.object region 64KiB

.hook pt_lookup
    r9 = 65536 ll               # region bytes
    *(u64 *)(r10 - 8) = r1      # ctx
    r6 = *(u64 *)(r1 + 0)       # root region
    r2 = *(u64 *)(r1 + 16)      # va
    *(u64 *)(r10 - 16) = r2
    r9 -= 16                    # the last slot's offset
    r8 = 0                      # size code
l_size:
    *(u64 *)(r10 - 80) = r8
    r2 = r8
    r2 <<= 3
    r3 = r6
    r3 += r2
    r2 = *(u64 *)(r3 + 0)       # pages of this size
    if r2 == 0 goto l_next
    r2 = r8
    r2 *= 9
    r2 += 12                    # page shift
    r3 = *(u64 *)(r10 - 16)
    r3 >>= r2
    r3 <<= r2
    r3 >>= 12                   # key vpn
    r2 = r3
    r2 <<= 4
    r4 = r8
    r4 <<= 2
    r2 |= r4
    r2 |= 2
    *(u64 *)(r10 - 24) = r2     # tag
    r2 = *(u64 *)(r6 + 32)      # root lo
    r4 = 0
    if r3 < r2 goto l_nd
    r4 = r3
    r4 -= r2
l_nd:
    r2 = *(u64 *)(r6 + 48)      # root shift
    r2 &= 63
    r4 >>= r2
    r2 = 0xfffffff ll
    if r4 <= r2 goto l_nc
    r4 = r2
l_nc:
    r2 = *(u64 *)(r6 + 40)      # root slope
    r5 = 0x3ffffffff ll
    r2 &= r5
    r4 *= r2
    r4 >>= 24                   # predicted node
    r2 = *(u64 *)(r6 + 64)      # nodes
    if r2 == 0 goto l_next
    if r2 <= 32 goto l_nn
    r2 = 32
l_nn:
    r2 -= 1                     # the last node
    if r4 <= r2 goto l_np
    r4 = r2
l_np:
    r5 = *(u64 *)(r6 + 56)      # root error bound
    r5 &= 31
    r5 += 1
    r0 = 0
    if r4 <= r5 goto l_nl
    r0 = r4
    r0 -= r5                    # first candidate node
l_nl:
    r8 = r4
    r8 += r5                    # last candidate node
    if r8 <= r2 goto l_nh
    r8 = r2
l_nh:
    if r0 <= r8 goto l_ns0
    r0 = r8
l_ns0:
    r4 = 0
l_ns:
    if r0 >= r8 goto l_node
    r5 = r0
    r5 += r8
    r5 += 1
    r5 >>= 1                    # mid
    r5 &= 31
    r2 = r5
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 128)     # node bounds[mid]
    if r2 > r3 goto l_nbh
    r0 = r5
    goto l_nbn
l_nbh:
    r8 = r5
    r8 -= 1
l_nbn:
    r4 += 1
    if r4 < 6 goto l_ns
l_node:
    r0 &= 31
    r0 <<= 5
    r7 = r6
    r7 += r0                    # the node's record is at r7 + 384
    r2 = *(u64 *)(r7 + 384)     # node lo
    r4 = 0
    if r3 < r2 goto l_rd
    r4 = r3
    r4 -= r2
l_rd:
    r2 = *(u64 *)(r7 + 400)     # node shift | error << 32
    r2 &= 63
    r4 >>= r2
    r2 = 0xfffffff ll
    if r4 <= r2 goto l_rc
    r4 = r2
l_rc:
    r2 = *(u64 *)(r7 + 392)     # node slope
    r5 = 0x3ffffffff ll
    r2 &= r5
    r4 *= r2
    r4 >>= 24                   # predicted leaf, counted from the node's first
    r2 = *(u64 *)(r7 + 408)     # first leaf | leaves << 32
    r5 = r2
    r5 >>= 32
    r2 <<= 32
    r2 >>= 32
    r2 &= 1023                  # the node's first leaf
    if r5 == 0 goto l_next
    if r5 <= 1024 goto l_rn
    r5 = 1024
l_rn:
    r4 += r2
    r5 += r2
    r5 -= 1                     # the node's last leaf
    if r5 <= 1023 goto l_rq
    r5 = 1023
l_rq:
    if r4 <= r5 goto l_rp
    r4 = r5
l_rp:
    *(u64 *)(r10 - 88) = r2     # first
    r2 = r5                     # last
    r5 = *(u64 *)(r7 + 400)
    r5 >>= 32
    r5 &= 1023
    r5 += 1                     # node error bound + 1
    r0 = *(u64 *)(r10 - 88)     # first candidate leaf: at least the node's first
    if r4 <= r5 goto l_rl
    r1 = r4
    r1 -= r5
    if r1 <= r0 goto l_rl
    r0 = r1
l_rl:
    r8 = r4
    r8 += r5                    # last candidate leaf
    if r8 <= r2 goto l_rh
    r8 = r2
l_rh:
    if r0 <= r8 goto l_bs0
    r0 = r8
l_bs0:
    r4 = 0
l_bs:
    if r0 >= r8 goto l_leaf
    r5 = r0
    r5 += r8
    r5 += 1
    r5 >>= 1                    # mid
    r5 &= 1023
    r2 = r5
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 1408)    # bounds[mid]
    if r2 > r3 goto l_bh
    r0 = r5
    goto l_bn
l_bh:
    r8 = r5
    r8 -= 1
l_bn:
    r4 += 1
    if r4 < 12 goto l_bs
l_leaf:
    r0 &= 1023
    r0 <<= 5
    r1 = r6
    r1 += r0                    # the leaf's record is at r1 + 9600
    r2 = *(u64 *)(r1 + 9600)    # leaf lo
    r4 = 0
    if r3 < r2 goto l_ld
    r4 = r3
    r4 -= r2
l_ld:
    r2 = 0xffffffff ll
    if r4 <= r2 goto l_lc
    r4 = r2
l_lc:
    r2 = *(u64 *)(r1 + 9608)    # slope | error << 32
    r5 = r2
    r5 >>= 32
    if r5 <= 4 goto l_le
    r5 = 4
l_le:
    *(u64 *)(r10 - 40) = r5
    r2 &= 0xfffff
    r4 *= r2
    r4 >>= 16                   # predicted slot
    r2 = *(u64 *)(r1 + 9616)    # slots | region << 32
    r5 = r2
    r5 >>= 32
    r2 <<= 32
    r2 >>= 32
    if r2 == 0 goto l_next
    *(u64 *)(r10 - 48) = r2
    r2 -= 1
    if r4 <= r2 goto l_lp
    r4 = r2
l_lp:
    *(u64 *)(r10 - 32) = r4
    r2 = *(u64 *)(r1 + 9624)    # slot array offset
    *(u64 *)(r10 - 56) = r2
    r1 = *(u64 *)(r10 - 8)      # ctx
    r7 = *(u64 *)(r1 + 0)
    if r5 == 0 goto l_rg
    r7 = *(u64 *)(r1 + 32)
    if r5 == 1 goto l_rg
    r7 = *(u64 *)(r1 + 40)
    if r5 == 2 goto l_rg
    r7 = *(u64 *)(r1 + 48)
    if r5 == 3 goto l_rg
    r7 = *(u64 *)(r1 + 56)
    if r5 == 4 goto l_rg
    r7 = *(u64 *)(r1 + 64)
    if r5 == 5 goto l_rg
    r7 = *(u64 *)(r1 + 72)
    if r5 == 6 goto l_rg
    r7 = *(u64 *)(r1 + 80)
    if r5 == 7 goto l_rg
    goto l_next
l_rg:
    r4 = 0                      # probe
l_w:
    r5 = r4
    r5 += 1
    r5 >>= 1                    # distance from the predicted slot
    r2 = *(u64 *)(r10 - 40)
    if r5 > r2 goto l_next
    r0 = *(u64 *)(r10 - 32)
    r2 = r4
    r2 &= 1
    if r2 != 0 goto l_wp
    if r0 < r5 goto l_wn
    r0 -= r5
    goto l_ws
l_wp:
    r0 += r5
l_ws:
    r2 = *(u64 *)(r10 - 48)
    if r0 >= r2 goto l_wn
    r0 <<= 4
    r2 = *(u64 *)(r10 - 56)
    r0 += r2
    if r0 > r9 goto l_wn
    r1 = r7
    r1 += r0
    r2 = *(u64 *)(r1 + 0)
    r5 = *(u64 *)(r10 - 24)
    if r2 == r5 goto l_hit
l_wn:
    r4 += 1
    if r4 < 9 goto l_w
    goto l_next
l_next:
    r8 = *(u64 *)(r10 - 80)
    r8 += 1
    if r8 < 3 goto l_size
    r0 = 0
    exit
l_hit:
    r0 = r1
    r0 += 8
    exit

.hook pt_map
    r9 = 65536 ll               # region bytes
    *(u64 *)(r10 - 8) = r1      # ctx
    r6 = *(u64 *)(r1 + 0)       # root region
    r2 = *(u64 *)(r1 + 16)      # va
    *(u64 *)(r10 - 16) = r2
    r9 -= 16                    # the last slot's offset
    r8 = *(u32 *)(r1 + 28)      # page shift: 12, 21 or 30
    r0 = 0
    if r8 < 12 goto m_out
    if r8 > 30 goto m_out
    r8 -= 12
    r8 /= 9                     # size code
    *(u64 *)(r10 - 80) = r8
    *(u64 *)(r10 - 72) = r0     # first empty slot of the window, offset + 1
    r2 = r8
    r2 *= 9
    r2 += 12                    # page shift
    r3 = *(u64 *)(r10 - 16)
    r3 >>= r2
    r3 <<= r2
    r3 >>= 12                   # key vpn
    r2 = r3
    r2 <<= 4
    r4 = r8
    r4 <<= 2
    r2 |= r4
    r2 |= 2
    *(u64 *)(r10 - 24) = r2     # tag
    r2 = *(u64 *)(r6 + 32)      # root lo
    r4 = 0
    if r3 < r2 goto m_nd
    r4 = r3
    r4 -= r2
m_nd:
    r2 = *(u64 *)(r6 + 48)      # root shift
    r2 &= 63
    r4 >>= r2
    r2 = 0xfffffff ll
    if r4 <= r2 goto m_nc
    r4 = r2
m_nc:
    r2 = *(u64 *)(r6 + 40)      # root slope
    r5 = 0x3ffffffff ll
    r2 &= r5
    r4 *= r2
    r4 >>= 24                   # predicted node
    r2 = *(u64 *)(r6 + 64)      # nodes
    if r2 == 0 goto m_out
    if r2 <= 32 goto m_nn
    r2 = 32
m_nn:
    r2 -= 1                     # the last node
    if r4 <= r2 goto m_np
    r4 = r2
m_np:
    r5 = *(u64 *)(r6 + 56)      # root error bound
    r5 &= 31
    r5 += 1
    r0 = 0
    if r4 <= r5 goto m_nl
    r0 = r4
    r0 -= r5                    # first candidate node
m_nl:
    r8 = r4
    r8 += r5                    # last candidate node
    if r8 <= r2 goto m_nh
    r8 = r2
m_nh:
    if r0 <= r8 goto m_ns0
    r0 = r8
m_ns0:
    r4 = 0
m_ns:
    if r0 >= r8 goto m_node
    r5 = r0
    r5 += r8
    r5 += 1
    r5 >>= 1                    # mid
    r5 &= 31
    r2 = r5
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 128)     # node bounds[mid]
    if r2 > r3 goto m_nbh
    r0 = r5
    goto m_nbn
m_nbh:
    r8 = r5
    r8 -= 1
m_nbn:
    r4 += 1
    if r4 < 6 goto m_ns
m_node:
    r0 &= 31
    r0 <<= 5
    r7 = r6
    r7 += r0                    # the node's record is at r7 + 384
    r2 = *(u64 *)(r7 + 384)     # node lo
    r4 = 0
    if r3 < r2 goto m_rd
    r4 = r3
    r4 -= r2
m_rd:
    r2 = *(u64 *)(r7 + 400)     # node shift | error << 32
    r2 &= 63
    r4 >>= r2
    r2 = 0xfffffff ll
    if r4 <= r2 goto m_rc
    r4 = r2
m_rc:
    r2 = *(u64 *)(r7 + 392)     # node slope
    r5 = 0x3ffffffff ll
    r2 &= r5
    r4 *= r2
    r4 >>= 24                   # predicted leaf, counted from the node's first
    r2 = *(u64 *)(r7 + 408)     # first leaf | leaves << 32
    r5 = r2
    r5 >>= 32
    r2 <<= 32
    r2 >>= 32
    r2 &= 1023                  # the node's first leaf
    if r5 == 0 goto m_out
    if r5 <= 1024 goto m_rn
    r5 = 1024
m_rn:
    r4 += r2
    r5 += r2
    r5 -= 1                     # the node's last leaf
    if r5 <= 1023 goto m_rq
    r5 = 1023
m_rq:
    if r4 <= r5 goto m_rp
    r4 = r5
m_rp:
    *(u64 *)(r10 - 88) = r2     # first
    r2 = r5                     # last
    r5 = *(u64 *)(r7 + 400)
    r5 >>= 32
    r5 &= 1023
    r5 += 1                     # node error bound + 1
    r0 = *(u64 *)(r10 - 88)     # first candidate leaf: at least the node's first
    if r4 <= r5 goto m_rl
    r1 = r4
    r1 -= r5
    if r1 <= r0 goto m_rl
    r0 = r1
m_rl:
    r8 = r4
    r8 += r5                    # last candidate leaf
    if r8 <= r2 goto m_rh
    r8 = r2
m_rh:
    if r0 <= r8 goto m_bs0
    r0 = r8
m_bs0:
    r4 = 0
m_bs:
    if r0 >= r8 goto m_leaf
    r5 = r0
    r5 += r8
    r5 += 1
    r5 >>= 1                    # mid
    r5 &= 1023
    r2 = r5
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 1408)    # bounds[mid]
    if r2 > r3 goto m_bh
    r0 = r5
    goto m_bn
m_bh:
    r8 = r5
    r8 -= 1
m_bn:
    r4 += 1
    if r4 < 12 goto m_bs
m_leaf:
    r0 &= 1023
    r0 <<= 5
    r1 = r6
    r1 += r0                    # the leaf's record is at r1 + 9600
    r2 = *(u64 *)(r1 + 9600)    # leaf lo
    r4 = 0
    if r3 < r2 goto m_ld
    r4 = r3
    r4 -= r2
m_ld:
    r2 = 0xffffffff ll
    if r4 <= r2 goto m_lc
    r4 = r2
m_lc:
    r2 = *(u64 *)(r1 + 9608)    # slope | error << 32
    r5 = r2
    r5 >>= 32
    if r5 <= 4 goto m_le
    r5 = 4
m_le:
    *(u64 *)(r10 - 40) = r5
    r2 &= 0xfffff
    r4 *= r2
    r4 >>= 16                   # predicted slot
    r2 = *(u64 *)(r1 + 9616)    # slots | region << 32
    r5 = r2
    r5 >>= 32
    r2 <<= 32
    r2 >>= 32
    if r2 == 0 goto m_out
    *(u64 *)(r10 - 48) = r2
    r2 -= 1
    if r4 <= r2 goto m_lp
    r4 = r2
m_lp:
    *(u64 *)(r10 - 32) = r4
    r2 = *(u64 *)(r1 + 9624)    # slot array offset
    *(u64 *)(r10 - 56) = r2
    r1 = *(u64 *)(r10 - 8)      # ctx
    r7 = *(u64 *)(r1 + 0)
    if r5 == 0 goto m_rg
    r7 = *(u64 *)(r1 + 32)
    if r5 == 1 goto m_rg
    r7 = *(u64 *)(r1 + 40)
    if r5 == 2 goto m_rg
    r7 = *(u64 *)(r1 + 48)
    if r5 == 3 goto m_rg
    r7 = *(u64 *)(r1 + 56)
    if r5 == 4 goto m_rg
    r7 = *(u64 *)(r1 + 64)
    if r5 == 5 goto m_rg
    r7 = *(u64 *)(r1 + 72)
    if r5 == 6 goto m_rg
    r7 = *(u64 *)(r1 + 80)
    if r5 == 7 goto m_rg
    goto m_out
m_rg:
    r4 = 0                      # probe
m_w:
    r5 = r4
    r5 += 1
    r5 >>= 1                    # distance from the predicted slot
    r2 = *(u64 *)(r10 - 40)
    if r5 > r2 goto m_insert
    r0 = *(u64 *)(r10 - 32)
    r2 = r4
    r2 &= 1
    if r2 != 0 goto m_wp
    if r0 < r5 goto m_wn
    r0 -= r5
    goto m_ws
m_wp:
    r0 += r5
m_ws:
    r2 = *(u64 *)(r10 - 48)
    if r0 >= r2 goto m_wn
    r0 <<= 4
    r2 = *(u64 *)(r10 - 56)
    r0 += r2
    if r0 > r9 goto m_wn
    r1 = r7
    r1 += r0
    r2 = *(u64 *)(r1 + 0)
    r5 = *(u64 *)(r10 - 24)
    if r2 == r5 goto m_hit
    if r2 != 0 goto m_wn
    r2 = *(u64 *)(r10 - 72)
    if r2 != 0 goto m_wn
    r2 = r0
    r2 += 1
    *(u64 *)(r10 - 72) = r2     # first empty slot, offset + 1
m_wn:
    r4 += 1
    if r4 < 9 goto m_w
    goto m_insert
m_hit:
    r0 = r1
    r0 += 8
    exit
m_insert:
    r0 = *(u64 *)(r10 - 72)
    if r0 == 0 goto m_out       # the window is full: the host retrains the leaf
    r0 -= 1
    if r0 > r9 goto m_fail
    r1 = r7
    r1 += r0
    r2 = *(u64 *)(r10 - 24)
    *(u64 *)(r1 + 0) = r2
    r8 = *(u64 *)(r10 - 80)
    r2 = r8
    r2 <<= 2
    r2 |= 16                    # PTE_LEAF | size, not present yet
    *(u64 *)(r1 + 8) = r2
    r8 <<= 3
    r3 = r6
    r3 += r8
    r2 = *(u64 *)(r3 + 0)
    r2 += 1
    *(u64 *)(r3 + 0) = r2
    r0 = r1
    r0 += 8
    exit
m_fail:
m_out:
    r0 = 0
    exit

.hook pt_unmap
    r9 = 65536 ll               # region bytes
    *(u64 *)(r10 - 8) = r1      # ctx
    r6 = *(u64 *)(r1 + 0)       # root region
    r2 = *(u64 *)(r1 + 16)      # va
    *(u64 *)(r10 - 16) = r2
    r9 -= 16                    # the last slot's offset
    r8 = 0                      # size code
u_size:
    *(u64 *)(r10 - 80) = r8
    r2 = r8
    r2 <<= 3
    r3 = r6
    r3 += r2
    r2 = *(u64 *)(r3 + 0)       # pages of this size
    if r2 == 0 goto u_next
    r2 = r8
    r2 *= 9
    r2 += 12                    # page shift
    r3 = *(u64 *)(r10 - 16)
    r3 >>= r2
    r3 <<= r2
    r3 >>= 12                   # key vpn
    r2 = r3
    r2 <<= 4
    r4 = r8
    r4 <<= 2
    r2 |= r4
    r2 |= 2
    *(u64 *)(r10 - 24) = r2     # tag
    r2 = *(u64 *)(r6 + 32)      # root lo
    r4 = 0
    if r3 < r2 goto u_nd
    r4 = r3
    r4 -= r2
u_nd:
    r2 = *(u64 *)(r6 + 48)      # root shift
    r2 &= 63
    r4 >>= r2
    r2 = 0xfffffff ll
    if r4 <= r2 goto u_nc
    r4 = r2
u_nc:
    r2 = *(u64 *)(r6 + 40)      # root slope
    r5 = 0x3ffffffff ll
    r2 &= r5
    r4 *= r2
    r4 >>= 24                   # predicted node
    r2 = *(u64 *)(r6 + 64)      # nodes
    if r2 == 0 goto u_next
    if r2 <= 32 goto u_nn
    r2 = 32
u_nn:
    r2 -= 1                     # the last node
    if r4 <= r2 goto u_np
    r4 = r2
u_np:
    r5 = *(u64 *)(r6 + 56)      # root error bound
    r5 &= 31
    r5 += 1
    r0 = 0
    if r4 <= r5 goto u_nl
    r0 = r4
    r0 -= r5                    # first candidate node
u_nl:
    r8 = r4
    r8 += r5                    # last candidate node
    if r8 <= r2 goto u_nh
    r8 = r2
u_nh:
    if r0 <= r8 goto u_ns0
    r0 = r8
u_ns0:
    r4 = 0
u_ns:
    if r0 >= r8 goto u_node
    r5 = r0
    r5 += r8
    r5 += 1
    r5 >>= 1                    # mid
    r5 &= 31
    r2 = r5
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 128)     # node bounds[mid]
    if r2 > r3 goto u_nbh
    r0 = r5
    goto u_nbn
u_nbh:
    r8 = r5
    r8 -= 1
u_nbn:
    r4 += 1
    if r4 < 6 goto u_ns
u_node:
    r0 &= 31
    r0 <<= 5
    r7 = r6
    r7 += r0                    # the node's record is at r7 + 384
    r2 = *(u64 *)(r7 + 384)     # node lo
    r4 = 0
    if r3 < r2 goto u_rd
    r4 = r3
    r4 -= r2
u_rd:
    r2 = *(u64 *)(r7 + 400)     # node shift | error << 32
    r2 &= 63
    r4 >>= r2
    r2 = 0xfffffff ll
    if r4 <= r2 goto u_rc
    r4 = r2
u_rc:
    r2 = *(u64 *)(r7 + 392)     # node slope
    r5 = 0x3ffffffff ll
    r2 &= r5
    r4 *= r2
    r4 >>= 24                   # predicted leaf, counted from the node's first
    r2 = *(u64 *)(r7 + 408)     # first leaf | leaves << 32
    r5 = r2
    r5 >>= 32
    r2 <<= 32
    r2 >>= 32
    r2 &= 1023                  # the node's first leaf
    if r5 == 0 goto u_next
    if r5 <= 1024 goto u_rn
    r5 = 1024
u_rn:
    r4 += r2
    r5 += r2
    r5 -= 1                     # the node's last leaf
    if r5 <= 1023 goto u_rq
    r5 = 1023
u_rq:
    if r4 <= r5 goto u_rp
    r4 = r5
u_rp:
    *(u64 *)(r10 - 88) = r2     # first
    r2 = r5                     # last
    r5 = *(u64 *)(r7 + 400)
    r5 >>= 32
    r5 &= 1023
    r5 += 1                     # node error bound + 1
    r0 = *(u64 *)(r10 - 88)     # first candidate leaf: at least the node's first
    if r4 <= r5 goto u_rl
    r1 = r4
    r1 -= r5
    if r1 <= r0 goto u_rl
    r0 = r1
u_rl:
    r8 = r4
    r8 += r5                    # last candidate leaf
    if r8 <= r2 goto u_rh
    r8 = r2
u_rh:
    if r0 <= r8 goto u_bs0
    r0 = r8
u_bs0:
    r4 = 0
u_bs:
    if r0 >= r8 goto u_leaf
    r5 = r0
    r5 += r8
    r5 += 1
    r5 >>= 1                    # mid
    r5 &= 1023
    r2 = r5
    r2 <<= 3
    r1 = r6
    r1 += r2
    r2 = *(u64 *)(r1 + 1408)    # bounds[mid]
    if r2 > r3 goto u_bh
    r0 = r5
    goto u_bn
u_bh:
    r8 = r5
    r8 -= 1
u_bn:
    r4 += 1
    if r4 < 12 goto u_bs
u_leaf:
    r0 &= 1023
    r0 <<= 5
    r1 = r6
    r1 += r0                    # the leaf's record is at r1 + 9600
    r2 = *(u64 *)(r1 + 9600)    # leaf lo
    r4 = 0
    if r3 < r2 goto u_ld
    r4 = r3
    r4 -= r2
u_ld:
    r2 = 0xffffffff ll
    if r4 <= r2 goto u_lc
    r4 = r2
u_lc:
    r2 = *(u64 *)(r1 + 9608)    # slope | error << 32
    r5 = r2
    r5 >>= 32
    if r5 <= 4 goto u_le
    r5 = 4
u_le:
    *(u64 *)(r10 - 40) = r5
    r2 &= 0xfffff
    r4 *= r2
    r4 >>= 16                   # predicted slot
    r2 = *(u64 *)(r1 + 9616)    # slots | region << 32
    r5 = r2
    r5 >>= 32
    r2 <<= 32
    r2 >>= 32
    if r2 == 0 goto u_next
    *(u64 *)(r10 - 48) = r2
    r2 -= 1
    if r4 <= r2 goto u_lp
    r4 = r2
u_lp:
    *(u64 *)(r10 - 32) = r4
    r2 = *(u64 *)(r1 + 9624)    # slot array offset
    *(u64 *)(r10 - 56) = r2
    r1 = *(u64 *)(r10 - 8)      # ctx
    r7 = *(u64 *)(r1 + 0)
    if r5 == 0 goto u_rg
    r7 = *(u64 *)(r1 + 32)
    if r5 == 1 goto u_rg
    r7 = *(u64 *)(r1 + 40)
    if r5 == 2 goto u_rg
    r7 = *(u64 *)(r1 + 48)
    if r5 == 3 goto u_rg
    r7 = *(u64 *)(r1 + 56)
    if r5 == 4 goto u_rg
    r7 = *(u64 *)(r1 + 64)
    if r5 == 5 goto u_rg
    r7 = *(u64 *)(r1 + 72)
    if r5 == 6 goto u_rg
    r7 = *(u64 *)(r1 + 80)
    if r5 == 7 goto u_rg
    goto u_next
u_rg:
    r4 = 0                      # probe
u_w:
    r5 = r4
    r5 += 1
    r5 >>= 1                    # distance from the predicted slot
    r2 = *(u64 *)(r10 - 40)
    if r5 > r2 goto u_next
    r0 = *(u64 *)(r10 - 32)
    r2 = r4
    r2 &= 1
    if r2 != 0 goto u_wp
    if r0 < r5 goto u_wn
    r0 -= r5
    goto u_ws
u_wp:
    r0 += r5
u_ws:
    r2 = *(u64 *)(r10 - 48)
    if r0 >= r2 goto u_wn
    r0 <<= 4
    r2 = *(u64 *)(r10 - 56)
    r0 += r2
    if r0 > r9 goto u_wn
    r1 = r7
    r1 += r0
    r2 = *(u64 *)(r1 + 0)
    r5 = *(u64 *)(r10 - 24)
    if r2 == r5 goto u_hit
u_wn:
    r4 += 1
    if r4 < 9 goto u_w
    goto u_next
u_next:
    r8 = *(u64 *)(r10 - 80)
    r8 += 1
    if r8 < 3 goto u_size
    r0 = 1
    exit
u_hit:
    r2 = 0
    *(u64 *)(r1 + 0) = r2
    *(u64 *)(r1 + 8) = r2
    r8 = *(u64 *)(r10 - 80)
    r8 <<= 3
    r1 = r6
    r1 += r8
    r2 = *(u64 *)(r1 + 0)
    r2 -= 1
    *(u64 *)(r1 + 0) = r2
    r0 = 0
    exit
