r11 = 1
exit
# expect: 1:1: no register 'r11' (registers are r0-r10)
