.map m array value=8 entries=8
.map m hash key=4 value=8 entries=8
exit
# expect: 2:6: duplicate map 'm' (first declared on line 1)
