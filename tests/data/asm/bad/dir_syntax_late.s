exit
.syntax kernel
# expect: 2:1: .syntax must come before the first instruction
