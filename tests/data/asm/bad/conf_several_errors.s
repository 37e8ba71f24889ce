mov %r12, 1
add %r0, 0x1ffffffff
jne %r0, 0, gone
exit
# expect: 1:5: no register '%r12' (registers are %r0-%r10)
# expect: 2:10: immediate 8589934591 does not fit in 32 bits
# expect: 3:13: unknown label 'gone'
