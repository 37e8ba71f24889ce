"""Random sequences of MM operations keep every invariant (hypothesis)."""

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mmcore.constants import MT
from mmcore.errors import RegionError
from mmcore.mm import MM
from mmcore.phys.physmem import MachineSpec, NodeSpec
from mmcore.sources import Source


class MMMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.mm = MM(MachineSpec((NodeSpec(4096, 1536), NodeSpec(2048, 512))))
        self.procs = []
        self.vmas = []  # (proc, start, length)
        self.regions = []
        self.files = [self.mm.new_file(1024), self.mm.new_file(512, 1)]

    @rule(home=st.integers(0, 1))
    def spawn(self, home):
        if len(self.procs) < 4:
            self.procs.append(self.mm.spawn(home_node=home))

    @precondition(lambda self: self.procs)
    @rule(i=st.integers(0, 3), mib=st.integers(1, 12), huge=st.sampled_from(["none", "thp"]))
    def mmap(self, i, mib, huge):
        p = self.procs[i % len(self.procs)]
        self.vmas.append((p, p.mmap(mib << 20, huge), mib << 20))

    @precondition(lambda self: self.vmas)
    @rule(i=st.integers(0, 50), frac=st.floats(0, 1), n=st.integers(1, 64))
    def touch(self, i, frac, n):
        p, start, length = self.vmas[i % len(self.vmas)]
        if not p.alive:
            return
        base = start + (int(frac * length) & -4096)
        for k in range(n):
            va = base + k * 4096
            if va < start + length:
                p.access(va)

    @precondition(lambda self: self.vmas)
    @rule(i=st.integers(0, 50), frac=st.floats(0, 1), mib=st.integers(1, 4))
    def munmap(self, i, frac, mib):
        p, start, length = self.vmas[i % len(self.vmas)]
        if p.alive:
            p.munmap(start + (int(frac * length) & -4096), mib << 20)

    @precondition(lambda self: self.procs)
    @rule(i=st.integers(0, 3))
    def exit(self, i):
        p = self.procs.pop(i % len(self.procs))
        self.mm.exit(p)

    @rule(src=st.sampled_from([Source.SLAB_RECLAIMABLE, Source.SLAB_UNMOVABLE, Source.NETBUF]),
          order=st.integers(0, 3), life=st.integers(1, 20), nid=st.integers(0, 1))  # fmt: skip
    def kernel_alloc(self, src, order, life, nid):
        self.mm.kernel.alloc(src, order, life, nid=nid)

    @rule(dt=st.integers(1, 10))
    def advance(self, dt):
        self.mm.tick += dt
        self.mm.background()

    @rule(f=st.integers(0, 1), start=st.integers(0, 511), n=st.integers(1, 128))
    def file_read(self, f, start, n):
        fl = self.files[f]
        for i in range(start, min(fl.npages, start + n)):
            fl.read(i)

    @rule(nid=st.integers(0, 1), order=st.sampled_from([-1, 3, 9]), evac=st.booleans())
    def compact(self, nid, order, evac):
        self.mm.compact(nid, order, evacuate_normal=evac)

    @rule(nid=st.integers(0, 1), nr=st.integers(1, 256), movable=st.booleans())
    def reclaim(self, nid, nr, movable):
        self.mm.reclaim.shrink_node(nid, nr, MT.MOVABLE if movable else MT.UNMOVABLE)

    @rule(nid=st.integers(0, 1), delta=st.integers(-4, 4))
    def resize(self, nid, delta):
        self.mm.resize_zone(nid, delta)

    @rule(n=st.integers(1, 700))
    def region_alloc(self, n):
        try:
            self.regions.append(self.mm.regions.alloc(n))
        except RegionError:
            pass

    @precondition(lambda self: self.regions)
    @rule(i=st.integers(0, 10))
    def region_free(self, i):
        self.mm.regions.free(self.regions.pop(i % len(self.regions)))

    @invariant()
    def consistent(self):
        self.mm.check()


MMMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMMStateful = MMMachine.TestCase
