.map m array value=8 entries=8 flags=1
exit
# expect: 1:32: unknown map attribute 'flags'
