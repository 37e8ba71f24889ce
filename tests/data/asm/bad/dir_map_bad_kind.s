.map counts ringbuf key=4 value=8 entries=8
exit
# expect: 1:13: unknown map type 'ringbuf' (expected array or hash)
