ja nowhere
exit
# expect: 1:4: unknown label 'nowhere'
