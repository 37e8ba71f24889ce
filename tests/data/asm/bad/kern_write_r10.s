r10 = 0
exit
# expect: 1:1: r10 is read-only (the frame pointer)
