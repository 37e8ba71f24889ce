lock fetch add [%r1], %r10
exit
# expect: 1:23: r10 is read-only (the frame pointer)
