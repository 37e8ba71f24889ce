call frobnicate
exit
# expect: 1:6: unknown helper 'frobnicate'
