# bpfvm fuzz finding (fault): pc 5: instruction budget of 2000000 exhausted
# target: mem, context of 8 bytes
# open verifier question: the loop bound is a constant, but r1 = -2147483648 is
# 0xffffffff80000000 as an unsigned number, so the loop runs about 2**64 times;
# the verifier accepts it (found by the fuzzer, campaign seed 2, case 8, a mutant
# of a verifier corpus case).
.syntax kernel
    r1 = -2147483648
    call fn
    exit
fn:
    r0 = 0
head:
    r0 += 1
    if r0 < r1 goto head
    exit
