# The built-in placement decision as a program: the process's home node.
#
# The MM core's own policy (no program attached) allocates a user page on
# the faulting process's home node; this program proposes exactly that, so
# a run with it attached simulates the same thing as a run without it and
# the difference in time is the cost of the hook.  benchmarks/bench_hook_cost.py
# uses it.  (The bound checks keep r0 within the hook's range for the
# verifier; home_node < nr_nodes <= 4 always holds.)
.hook placement

    r0 = *(u32 *)(r1 + 12)      # home_node
    r2 = *(u32 *)(r1 + 16)      # nr_nodes
    if r0 >= r2 goto zero
    if r0 > 3 goto zero
    exit
zero:
    r0 = 0
    exit
