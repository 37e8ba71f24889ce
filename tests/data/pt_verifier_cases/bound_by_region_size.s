# Rejected, though safe: the offset is bounded by the ctx field region_size,
# which the host always sets to the size of the region object.  The verifier
# does not know that field equals the object's size, so page-table programs
# load their region size as a constant in their first instruction instead
# (mmcore.ptload patches it per region).  Verify with
#     hook pt_lookup, objects={"region": 65536}
.hook pt_lookup
    r6 = *(u64 *)(r1 + 0)       # region
    r2 = *(u64 *)(r1 + 8)       # region_size
    r3 = *(u64 *)(r1 + 16)      # va
    r3 >>= 12
    r3 <<= 3                    # 8-byte slot per page
    if r2 < 8 goto none
    r2 -= 8
    if r3 > r2 goto none        # offset <= region_size - 8
    r6 += r3
    r0 = *(u64 *)(r6 + 0)
    r0 = r6
    exit
none:
    r0 = 0
    exit
