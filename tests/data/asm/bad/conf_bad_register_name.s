mov %rax, 1
exit
# expect: 1:5: bad register '%rax' (expected %r0-%r10)
