/* The four benchmark programs of benchmarks/bench_jit.py, written in C.
 *
 * Each function has the signature of a JIT-compiled program
 * (state, r1 = context address, r2 = context length) and implements the same
 * algorithm as the eBPF program of the same name, on the same memory: where
 * the eBPF program reaches a map value with lddw, the C function gets the
 * map's address from the context.  bench_loop() calls any such function
 * (C or JIT) over an array of contexts, so that both are timed by the same
 * code, call overhead included.  Compiled at benchmark time with gcc -O2.
 */
#include <stdint.h>

typedef uint64_t (*prog_fn)(void *state, uint64_t r1, uint64_t r2);

uint64_t bench_loop(prog_fn fn, void *state, uint8_t *ctxs, uint64_t ctx_size,
                    uint64_t n_ctx, uint64_t iters)
{
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t k = i % n_ctx;
        acc += fn(state, (uint64_t)(ctxs + k * ctx_size), ctx_size);
    }
    return acc;
}

uint64_t nop0(void) { return 0; }

/* ctx: u64 n_max (at most 1000). Count the primes below n_max by trial division. */
uint64_t primes(void *state, uint64_t r1, uint64_t r2)
{
    const uint64_t *ctx = (const uint64_t *)r1;
    uint64_t n_max = ctx[0] <= 1000 ? ctx[0] : 1000, count = 0;
    for (uint64_t n = 2; n < n_max; n++) {
        uint64_t d = 2;
        for (; d < n && d * d <= n; d++)
            if (n % d == 0)
                break;
        if (d >= n || d * d > n)
            count++;
    }
    return count;
}

/* ctx: u64 first_vpn, u64 lookups, u64 table. The table holds 4096 tags
 * (vpn + 1, 0 = empty) then 4096 values; open addressing, linear probing, at most
 * 64 probes; at most 1000 lookups. */
uint64_t pt_probe(void *state, uint64_t r1, uint64_t r2)
{
    const uint64_t *ctx = (const uint64_t *)r1;
    const uint64_t *tags = (const uint64_t *)ctx[2];
    const uint64_t *values = tags + 4096;
    uint64_t first = ctx[0], lookups = ctx[1] <= 1000 ? ctx[1] : 1000, sum = 0;
    for (uint64_t i = 0; i < lookups; i++) {
        uint64_t vpn = first + i * 7, tag = vpn + 1;
        uint64_t slot = (vpn * 0x9E3779B97F4A7C15ull) >> 52;
        for (uint64_t probes = 0; probes < 64; probes++) {
            uint64_t t = tags[slot];
            if (t == tag) {
                sum += values[slot];
                break;
            }
            if (t == 0)
                break;
            slot = (slot + 1) & 4095;
        }
    }
    return sum;
}

/* ctx: u64 src, u64 dst. Copy a 4 KiB map value, 8 bytes at a time. */
uint64_t copy_value(void *state, uint64_t r1, uint64_t r2)
{
    const uint64_t *ctx = (const uint64_t *)r1;
    const uint64_t *src = (const uint64_t *)ctx[0];
    uint64_t *dst = (uint64_t *)ctx[1];
    for (uint64_t off = 0; off < 4096; off += 8)
        dst[off / 8] = src[off / 8];
    return 0;
}

/* The placement hook's context; pick a node for a new page. */
struct placement {
    uint32_t order, source, pid, home_node, nr_nodes, hint;
    uint64_t free_node[4];
};

uint64_t policy(void *state, uint64_t r1, uint64_t r2)
{
    const struct placement *c = (const struct placement *)r1;
    uint64_t home = c->home_node & 1, other = home ^ 1;
    uint64_t free0 = c->free_node[0], free1 = c->free_node[1];
    uint64_t home_free = home ? free1 : free0;
    if (c->source == 5)                      /* page tables stay local */
        return home;
    if (c->order >= 9)                       /* huge: wherever more is free */
        return free1 > free0 ? 1 : 0;
    if (c->hint > 700)                       /* hot: home if it has room */
        return home_free >= (1ull << c->order) + 1024 ? home : other;
    if (c->hint < 100 && c->nr_nodes > 1)    /* cold: the far tier */
        return 1;
    if (c->source == 1)                      /* page cache: node 0 unless it is short */
        return free0 >= 4096 ? 0 : 1;
    return home_free >= 2048 ? home : other;
}
