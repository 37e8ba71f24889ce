top:
mov %r0, 0
top:
exit
# expect: 3:1: duplicate label 'top' (first defined on line 1)
