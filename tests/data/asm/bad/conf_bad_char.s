mov %r0, 1 @
exit
# expect: 1:12: unexpected character '@'
