r3 = cmpxchg_64(r1 + 0, r3, r2)
exit
# expect: 1:1: cmpxchg compares with and writes r0, not 'r3'
