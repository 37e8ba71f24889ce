.map counts hash key=4 entries=8
exit
# expect: 1:1: map 'counts' lacks value_size; usage: .map NAME array|hash k
