stxw [%r10-32769], %r1
exit
# expect: 1:11: offset -32769 does not fit in 16 bits
