lock *(u64 *)(r1 + 0) -= r2
exit
# expect: 1:23: unknown atomic operator '-=' (expected &= += ^= |=)
