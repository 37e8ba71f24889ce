r1 = be24 r1
exit
# expect: 1:6: unknown operation 'be24'
