r2 = atomic_fetch_nand((u64 *)(r1 + 0), r2)
exit
# expect: 1:6: unknown function 'atomic_fetch_nand'
