/* Every loader feature in one object (tests/test_elf_loader.py): two
 * program sections sharing .text subprograms, a BTF hash map and a BTF
 * array map, a legacy map, .rodata, .data and .bss globals. */
#include "bpfvm.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 64);
} counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(key_size, 4);
    __uint(value_size, 16);
    __uint(max_entries, 8);
} slots SEC(".maps");

struct bpf_map_def SEC("maps") legacy = {
    .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 2,
};

static const volatile __u32 weights[4] = {3, 5, 7, 11};
__u64 calls;            /* .bss */
__u64 scale = 1000;     /* .data */

static __noinline __u64 weigh(__u64 x)
{
    return x * weights[x & 3];
}

static __noinline __u64 twice(__u64 x)
{
    return weigh(x) * 2;
}

SEC("lifetime")
int classify(struct lifetime_ctx *ctx)
{
    __u32 site = ctx->site;
    __u64 *n = bpf_map_lookup_elem(&counts, &site);
    if (n)
        *n += 1;
    else {
        __u64 one = 1;
        map_update_elem(&counts, &site, &one, BPF_ANY);
    }
    calls += 1;
    __u32 k = 1;
    __u64 *l = bpf_map_lookup_elem(&legacy, &k);
    if (l)
        *l = scale;
    return twice(site) > 40 ? 2 : 1;
}

SEC("placement")
int place(struct placement_ctx *ctx)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&slots, &k);
    if (v)
        v[1] = weigh(ctx->hint);
    return ctx->nr_nodes > 1 && weigh(ctx->hint) > scale ? 1 : 0;
}
