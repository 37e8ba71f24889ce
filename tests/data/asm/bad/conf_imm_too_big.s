add %r1, 0x100000000
exit
# expect: 1:10: immediate 4294967296 does not fit in 32 bits
