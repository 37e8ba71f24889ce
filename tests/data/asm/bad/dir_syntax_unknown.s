.syntax intel
exit
# expect: 1:9: unknown syntax 'intel' (expected conformance or kernel)
