r3 = *(u8 *)skb[4]
exit
# expect: 1:1: packet loads always write r0, not 'r3'
