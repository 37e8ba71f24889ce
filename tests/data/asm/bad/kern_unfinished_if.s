if r1 == 
exit
# expect: 1:9: unexpected end of line; expected '+' or '-', number, registe
