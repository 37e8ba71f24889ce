r1 s+= 3
exit
# expect: 1:4: unknown operator 's+='
