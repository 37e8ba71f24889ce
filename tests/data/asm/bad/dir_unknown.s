.section .text
exit
# expect: 1:1: unknown directive '.section'
