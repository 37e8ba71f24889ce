if r1 > 3 goto done
exit
# expect: 1:16: unknown label 'done'
