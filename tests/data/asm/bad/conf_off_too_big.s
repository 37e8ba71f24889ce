ldxw %r0, [%r1+32768]
exit
# expect: 1:15: offset 32768 does not fit in 16 bits
