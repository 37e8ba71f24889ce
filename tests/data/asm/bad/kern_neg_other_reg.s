r1 = -r2
exit
# expect: 1:7: negation needs the same register on both sides
