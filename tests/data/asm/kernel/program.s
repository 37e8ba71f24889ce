// A small program as clang would emit it: count set bits of r1.
        r0 = 0
        r2 = r1
LBB0_1:
        if r2 == 0 goto LBB0_3
        r3 = r2
        r3 &= 1
        r0 += r3
        r2 >>= 1
        goto LBB0_1
LBB0_3:
        *(u64 *)(r10 - 8) = r0
        r1 = *(u64 *)(r10 - 8)
        w1 += 1
        call 5
        exit
