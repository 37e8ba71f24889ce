mov %r0, 0
movq %r0, 1
exit
# expect: 2:1: unknown mnemonic 'movq'
