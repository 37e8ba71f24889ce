stw [%r10-4], %r1
exit
# expect: 1:1: bad operands for 'stw': expected stw [REG+OFF], IMM
