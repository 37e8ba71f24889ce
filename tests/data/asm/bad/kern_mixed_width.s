w1 += r2
exit
# expect: 1:7: 'r2' mixes 32-bit (w) and 64-bit (r) registers with 'w1'
