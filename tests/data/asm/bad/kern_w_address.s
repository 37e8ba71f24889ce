r0 = *(u32 *)(w1 + 0)
exit
# expect: 1:15: an address register must be a 64-bit register
