mov32 %r1, -2147483649
exit
# expect: 1:12: immediate -2147483649 does not fit in 32 bits
