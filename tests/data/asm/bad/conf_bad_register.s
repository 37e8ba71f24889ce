# a register beyond r10
mov %r11, 1
exit
# expect: 2:5: no register '%r11' (registers are %r0-%r10)
