ldxdw %r10, [%r1]
exit
# expect: 1:7: r10 is read-only (the frame pointer)
