.syntax kernel
r0 = 1
mov %r0, 2
exit
# expect: 3:5: this line is conformance syntax but the file is kernel syntax
