// byte-order conversions and 64-bit immediates
r1 = le16 r1
r1 = le32 r1
r1 = le64 r1
r1 = be16 r1
r1 = be32 r1
r1 = be64 r1
r2 = 0x123456789abcdef0 ll
r3 = -1 ll
r4 = 0 ll
r0 = 1
exit
