"""mmcore.scenario.seed: a scenario that starts from a snapshot of a real machine.

The shipped snapshot is synthetic (``tests/mmcore/studies/synthetic_snapshot.py``
says how it is made); the seeded machine is compared with ``bpfvm mm
analyze``'s independent reading of the same snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bpfvm.cli import main
from mmcore.constants import ORDER_1G, PAGEBLOCK_ORDER, FrameState
from mmcore.errors import ScenarioError
from mmcore.metrics import unmovable_pageblocks
from mmcore.phys.snapshot import PageClass, load
from mmcore.scenario.runner import Runner
from mmcore.scenario.schema import parse_scenario
from mmcore.scenario.seed import KERNEL, UNMOVABLE_CLASSES
from mmcore.studies.analyze import analyze
from tests.conftest import DATA

SNAP = DATA / "snapshots" / "synthetic.npz"


def scenario(machine: dict, duration: int = 3) -> dict:
    return {"name": "seeded", "seed": 1, "duration": duration, "sample_every": 1,
            "machine": machine, "phases": [{"name": "churn", "kernel": {"slab_rate": 4}}]}


@pytest.fixture(scope="module")
def seeded():
    sc = parse_scenario(scenario({"snapshot": str(SNAP)}), "s.toml")
    return Runner(sc)


@pytest.fixture(scope="module")
def classes():
    return load(SNAP).classes()


def test_every_frame_takes_its_recorded_class(seeded, classes):
    mm = seeded.mm
    fr = mm.frames
    assert fr.n == len(classes)
    state, owner = fr.view("state"), fr.view("owner")
    free = classes == PageClass.FREE
    unmov = np.isin(classes, UNMOVABLE_CLASSES)
    assert (state[~free] == FrameState.ALLOC).all()
    assert (owner[unmov] == KERNEL).all()
    movable = (classes == PageClass.ANON) | (classes == PageClass.FILE)
    (f,) = mm.files.values()
    assert (owner[movable] == f.fid).all() and f.cached == int(movable.sum())
    assert sum(z.free_pages for z in mm.phys.zones) == int(free.sum())
    counts = np.bincount(classes, minlength=len(PageClass))
    assert seeded.seeded.pages == {c.name.lower(): int(counts[c]) for c in PageClass}
    mm.check()  # every invariant of the MM holds on the seeded machine


def test_the_seeded_machine_reads_as_analyze_reads_the_snapshot(seeded, classes):
    mm = seeded.mm
    got = analyze(load(SNAP))
    z = mm.phys.zones[0]
    free_2m = sum(z.nr_free[o] << (o - PAGEBLOCK_ORDER)
                  for o in range(PAGEBLOCK_ORDER, ORDER_1G + 1))
    assert free_2m == got["free_now"]["2m"]
    assert z.nr_free[ORDER_1G] == got["free_now"]["1g"]
    # holes are unmovable frames in the simulator, "neither" for analyze
    blocks = classes.reshape(-1, 512)
    with_hole = (blocks == PageClass.HOLE).any(axis=1)
    tainted = int(unmovable_pageblocks(mm).sum())
    assert got["tainted"]["any_unmovable"] <= tainted
    assert tainted == int((np.isin(blocks, UNMOVABLE_CLASSES)).any(axis=1).sum())
    assert tainted - got["tainted"]["any_unmovable"] <= int(with_hole.sum())


def test_a_seeded_scenario_runs_to_its_end_with_every_check(tmp_path: Path, capsys):
    toml = tmp_path / "seeded.toml"
    toml.write_text(f'name = "seeded"\nduration = 4\n[machine]\nsnapshot = "{SNAP}"\n'
                    '[[phases]]\n[phases.kernel]\nslab_rate = 8\nnetbuf_rate = 8\n'
                    '[phases.file]\nfiles = 1\nfile_size = "64MiB"\nreads_per_tick = 256\n')
    assert main(["mm", "run", str(toml), "--check"]) == 0
    assert "invariants held" in capsys.readouterr().out


def test_snapshot_paths_are_relative_to_the_scenario_and_errors_name_the_key(tmp_path):
    (tmp_path / "snap.npz").write_bytes(SNAP.read_bytes())
    sc = parse_scenario(scenario({"snapshot": "snap.npz"}), str(tmp_path / "s.toml"))
    assert sc.machine.snapshot == str(tmp_path / "snap.npz")
    assert sc.machine.nodes[0].pages == len(load(SNAP).flags)
    with pytest.raises(ScenarioError, match=r"machine\.snapshot: .*no such file"):
        parse_scenario(scenario({"snapshot": "missing.npz"}), str(tmp_path / "s.toml"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ScenarioError, match=r"machine\.snapshot: .*not a snapshot"):
        parse_scenario(scenario({"snapshot": "junk.npz"}), str(tmp_path / "s.toml"))
    with pytest.raises(ScenarioError, match=r"machine\.nodes: give nodes or snapshot"):
        parse_scenario(scenario({"snapshot": str(SNAP), "nodes": [{"memory": "64MiB"}]}))


def test_classes_of_a_seeded_machine_give_back_the_recorded_classes(seeded, classes):
    from mmcore.scenario.seed import classes_of

    got = classes_of(seeded.mm, classes, seeded.seeded.file_id)
    assert (got == classes).all()
    # without the recording, the recorded anonymous pages read as page cache
    plain = classes_of(seeded.mm)
    assert (plain[classes == PageClass.ANON] == PageClass.FILE).all()


def test_classes_of_a_live_machine_name_each_owner():
    from mmcore.scenario.seed import classes_of
    from mmcore.sources import Source
    from tests.mmcore.machines import small_mm

    mm = small_mm(pages=2048)
    slab = mm.kernel.alloc(Source.SLAB_UNMOVABLE, 1, 100)
    net = mm.kernel.alloc(Source.NETBUF, 0, 100)
    proc = mm.spawn()
    start = proc.mmap(2 << 20, "none")
    anon = proc.access(start)
    f = mm.new_file(4)
    page = f.read(2)
    got = classes_of(mm)
    assert got[slab] == got[slab + 1] == PageClass.SLAB
    assert got[net] == PageClass.KERNEL_OTHER
    assert got[anon] == PageClass.ANON and got[page] == PageClass.FILE
    assert (got == PageClass.PGTABLE).sum() == mm.page_table_pages()
    pcp = sum(len(lst) for z in mm.phys.zones for lst in z.pcp)
    assert (got == PageClass.FREE).sum() == sum(z.free_pages for z in mm.phys.zones) + pcp
