r1 = 0x10000000000000000 ll
exit
# expect: 1:6: immediate 18446744073709551616 does not fit in 64 bits
