mov %r0 1
exit
# expect: 1:9: unexpected '1'; expected ','
