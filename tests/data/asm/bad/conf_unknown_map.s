.map counts array value=8 entries=4
lddw %r1, map[count]
exit
# expect: 2:11: unknown map 'count'
