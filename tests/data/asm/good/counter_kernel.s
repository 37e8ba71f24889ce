// Count events per key in a hash map (kernel syntax, as llvm-objdump prints).
.hook generic
.map counts hash key=4 value=8 entries=64
        r6 = r1
        r2 = r10
        r2 += -4
        *(u32 *)(r10 - 4) = 7
        r1 = map[counts] ll
        call map_lookup_elem
        if r0 == 0 goto LBB0_2
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
LBB0_2:
        r0 = 0
        exit
