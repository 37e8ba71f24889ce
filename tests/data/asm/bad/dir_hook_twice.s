.hook placement
.hook reclaim
exit
# expect: 2:1: second .hook (the program already attaches to placement)
