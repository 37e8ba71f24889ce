# Tiered memory: hot pages on the fast tier (node 0), cold pages on the far
# tier (node 1).
#
# The placement context carries the VMA's hotness hint (0 cold .. 1000 hot)
# and the free pages of each node.  Hot memory goes to node 0 while it keeps
# more than RESERVE free pages (32 MiB), else to node 1; cold memory goes to
# node 1 while it has room, else to node 0.  With a single node everything
# goes to node 0.
#
# r0: the node to allocate from.
.hook placement

    r0 = 0
    r2 = *(u32 *)(r1 + 16)      # nr_nodes
    if r2 < 2 goto out
    r3 = *(u32 *)(r1 + 20)      # hint
    r4 = *(u64 *)(r1 + 24)      # free_node0
    r5 = *(u64 *)(r1 + 32)      # free_node1
    if r3 < 500 goto cold
    if r4 > 8192 goto out       # hot and the fast tier has room: node 0
    r0 = 1
    exit
cold:
    r0 = 1
    if r5 > 8192 goto out       # cold and the far tier has room: node 1
    r0 = 0
out:
    exit
