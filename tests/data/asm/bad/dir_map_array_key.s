.map counts array key=8 value=8 entries=8
exit
# expect: 1:1: map 'counts': array maps have 4-byte keys
