w0 = *(u64 *)(r1 + 0)
exit
# expect: 1:1: 'w0' cannot hold a u64 load; use r0
