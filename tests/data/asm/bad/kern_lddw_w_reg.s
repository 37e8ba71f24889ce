w1 = 0x100000000 ll
exit
# expect: 1:1: the destination of a 64-bit load must be a 64-bit register
