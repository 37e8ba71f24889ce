.raw 0x10000000000000000
exit
# expect: 1:6: raw word 18446744073709551616 does not fit in 64 bits
