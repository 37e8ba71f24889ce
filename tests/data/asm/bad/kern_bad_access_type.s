r0 = *(u128 *)(r1 + 0)
exit
# expect: 1:8: bad access type 'u128'
