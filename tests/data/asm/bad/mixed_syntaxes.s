mov %r0, 1
r0 = 2
exit
# expect: 2:4: this line is kernel syntax but the file is conformance syntax
