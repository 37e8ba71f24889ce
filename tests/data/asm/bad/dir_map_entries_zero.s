.map m array value=8 entries=0
exit
# expect: 1:1: map 'm': max_entries must be between 1 and 16777216, not 0
