r0 = 1
== r1
exit
# expect: 2:1: a line starts with an instruction, a label or a directive
