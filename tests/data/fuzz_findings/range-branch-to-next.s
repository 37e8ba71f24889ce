# bpfvm fuzz finding (range): pc 3: r0 = 0x8 is outside the claimed smin=65537,umin=65537,umax=9223372036854775807,var_off=(0x0; 0x7fffffffffffffff)
# target: hook zone_resize
# open verifier bug: a conditional jump whose target is the next instruction
# keeps only one refined edge state at that pc, so the claimed range is wrong
# (found by the fuzzer, campaign seed 1, reduced by hand from its reproducer).
.syntax kernel
.hook zone_resize
    r3 = *(u64 *)(r1 + 40)
    r0 = r3
    if r0 s> 65536 goto next
next:
    r0 = 0
    exit
