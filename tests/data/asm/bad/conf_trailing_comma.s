add %r0, 1,
exit
# expect: 1:12: unexpected end of line; expected '+' or '-', '[', name, numb
