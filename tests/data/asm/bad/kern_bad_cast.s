r1 = (s64)r2
exit
# expect: 1:7: bad cast '(s64)' (expected (s16), (s32), (s8))
