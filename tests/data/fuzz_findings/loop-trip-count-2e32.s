# bpfvm fuzz finding (fault): pc 2: instruction budget of 5000000 exhausted
# target: hook reclaim
# open verifier question: the loop counter comes from a u32 context field, so the
# loop may run 2**32 times; the verifier accepts it (its trip count is bounded
# only by 2**32), and every engine runs out of its instruction budget.
.syntax kernel
.hook reclaim
    r7 = *(u32 *)(r1 + 56)
head:
    if r7 == 0 goto out
    r7 -= 1
    goto head
out:
    r0 = 0
    exit
