mov %r0
exit
# expect: 1:1: bad operands for 'mov': expected mov REG, IMM or mov REG, RE
