"""Snapshots of real machines: page classes, the file format, and the counts
of ``analyze`` on the shipped synthetic snapshot (expected values worked out
by hand from the layout in ``synthetic_snapshot.py``; nothing reads /proc)."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

from mmcore.phys import snapshot as sn
from mmcore.phys.snapshot import PageClass as C
from mmcore.studies import analyze as az
from tests.mmcore.studies import synthetic_snapshot as synth


def bits(*b: int) -> int:
    return sum(1 << x for x in b)


@pytest.fixture(scope="module")
def shipped() -> sn.Snapshot:
    return sn.load(synth.PATH)


@pytest.fixture(scope="module")
def result(shipped: sn.Snapshot) -> dict:
    return az.analyze(shipped)


# ---- classes -----------------------------------------------------------------------------
@pytest.mark.parametrize("flags,cls", [
    (bits(sn.KPF_BUDDY), C.FREE),
    (bits(sn.KPF_RESERVED), C.RESERVED),
    (bits(sn.KPF_OFFLINE), C.RESERVED),
    (bits(sn.KPF_SLAB, sn.KPF_COMPOUND_TAIL), C.SLAB),
    (bits(sn.KPF_PGTABLE), C.PGTABLE),
    (bits(sn.KPF_ANON, sn.KPF_LRU, sn.KPF_THP, sn.KPF_COMPOUND_TAIL), C.ANON),
    (bits(sn.KPF_HUGE, sn.KPF_COMPOUND_HEAD), C.ANON),
    (bits(sn.KPF_LRU, sn.KPF_UPTODATE), C.FILE),
    (bits(sn.KPF_MMAP), C.FILE),
    (bits(sn.KPF_UPTODATE, sn.KPF_DIRTY, sn.KPF_PRIVATE), C.FILE),
    (0, C.KERNEL_OTHER),
    (bits(sn.KPF_COMPOUND_TAIL), C.KERNEL_OTHER),
    (bits(sn.KPF_COMPOUND_HEAD), C.KERNEL_OTHER),
    (bits(sn.KPF_ZERO_PAGE), C.KERNEL_OTHER),
    (bits(sn.KPF_NOPAGE), C.HOLE),
    # first match wins
    (bits(sn.KPF_BUDDY, sn.KPF_RESERVED), C.FREE),
    (bits(sn.KPF_RESERVED, sn.KPF_SLAB), C.RESERVED),
    (bits(sn.KPF_SLAB, sn.KPF_PGTABLE), C.SLAB),
    (bits(sn.KPF_PGTABLE, sn.KPF_ANON), C.PGTABLE),
    (bits(sn.KPF_ANON, sn.KPF_LRU), C.ANON),
    (bits(sn.KPF_NOPAGE, sn.KPF_BUDDY), C.HOLE),
])
def test_classify_rules(flags: int, cls: C) -> None:
    assert sn.classify(np.array([flags], dtype=np.uint64))[0] == cls


def test_outside_system_ram_is_a_hole_whatever_the_flags() -> None:
    flags = np.array([bits(sn.KPF_BUDDY), 0, 0, bits(sn.KPF_RESERVED)], dtype=np.uint64)
    ram = np.array([True, True, False, False])
    assert list(sn.classify(flags, ram)) == [C.FREE, C.KERNEL_OTHER, C.HOLE, C.HOLE]


def test_iomem_top_level_ram_only_and_zero_addresses_ignored() -> None:
    text = ("00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n"
            "  00100000-001fffff : System RAM\n100000000-13fffffff : System RAM\n")
    assert sn.ram_ranges(text) == [(0x1000, 0x9fbff), (0x100000000, 0x13fffffff)]
    assert sn.ram_ranges("00000000-00000000 : System RAM\n00000000-00000000 : System RAM\n") \
        == []
    snap = sn.Snapshot(flags=np.zeros(8, np.uint64), pfn0=0,
                       texts={"iomem": "00002000-00004fff : System RAM\n"
                                       "00006800-00006fff : System RAM\n"})
    assert list(snap.ram_mask()) == [False, False, True, True, True, False, True, False]
    assert sn.Snapshot(flags=np.zeros(2, np.uint64)).ram_mask() is None


# ---- the shipped synthetic snapshot --------------------------------------------------------
def test_shipped_snapshot_is_the_script_output(shipped: sn.Snapshot) -> None:
    built = synth.build()
    assert shipped.origin == "synthetic" and "synthetic" in shipped.note
    assert np.array_equal(shipped.flags, built.flags)
    assert shipped.texts == built.texts and shipped.pfn0 == 0


def test_synthetic_page_counts(result: dict) -> None:
    assert result["frames"] == 3 * 512 * 512
    assert result["pages"] == {
        "free": 10 * 511 + 4 * 508 + 70 * 512 + 412 + 255 * 512 + 256 * 512 + 100,
        "anon": 256 + 509 + 200 * 512 + 128 * 512,
        "file": 5 * 511 + 212 * 512 + 127 * 512 + 412,
        "slab": 11, "pgtable": 6, "reserved": 255 + 9 * 512, "kernel_other": 1 + 16,
        "hole": 1 + 256 * 512 + 100,
    }


def test_synthetic_pageblock_counts(result: dict) -> None:
    assert result["pageblocks"] == 1536 - 256
    assert result["tainted"] == {"slab": 11, "pgtable": 6, "reserved": 10, "kernel_other": 5,
                                 "any_unmovable": 30}
    assert result["blocks_with_class"] == {"free": 10 + 4 + 70 + 1 + 255 + 256 + 1,
                                           "anon": 1 + 1 + 200 + 128, "file": 5 + 212 + 128,
                                           "slab": 11, "pgtable": 6, "reserved": 10,
                                           "kernel_other": 5}
    assert result["blocks_with_hole"] == 2  # pfn 0 (iomem: Reserved) and block 768
    assert result["obtainable"] == {"2m": 1280 - 30 - 1, "1g": 1}
    assert result["obtainable_at_once"] == {"2m": result["pages"]["free"] // 512, "1g": 1}
    assert result["free_now"] == {"2m": 70 + 255 + 256, "1g": 0}
    assert result["gigablocks"] == 3


def test_synthetic_free_histogram(result: dict) -> None:
    assert result["free_runs"] == [10, 10, 16, 15, 15, 15, 15, 15, 15, 1, 35 + 127 + 128]
    assert result["buddyinfo"] == {"node 0 Normal": [3, 1, 0, 0, 0, 0, 0, 0, 0, 1, 320]}
    assert result["kernel_counters"]["pcp_free_pages"] == 42
    assert result["kernel_counters"]["nr_page_table_pages"] == 6
    assert "pgfault" not in result["kernel_counters"]
    assert result["flagless"] == {"pages": 1, "blocks_only_flagless": 0}


def test_flagless_bound() -> None:
    flags = np.full(4 * 512, bits(sn.KPF_BUDDY), np.uint64)
    flags[3] = 0  # block 0: flagless only
    flags[512 + 5] = 0  # block 1: flagless and slab
    flags[512 + 6] = bits(sn.KPF_SLAB)
    flags[1024 + 9] = bits(sn.KPF_SLAB)  # block 2: slab only
    classes = sn.classify(flags)
    assert az.flagless(flags, classes) == {"pages": 2, "blocks_only_flagless": 1}


def test_excerpt_counts_only_whole_gigabytes() -> None:
    built = synth.build()
    # pfns from block 1024 - 512 (inside GiB 1) to the end: GiB 1 is cut, GiB 2 whole
    cut = 512 * 512
    r, kinds = az.analyze_classes(built.classes()[cut + 512 * 256:], cut + 512 * 256)
    assert r["obtainable"]["1g"] == 1 and r["gigablocks"] == 2
    assert r["pageblocks"] == 256 + 512 and kinds.size == 768
    assert r["free_now"]["2m"] == 255 + 256


def test_free_runs_small() -> None:
    free = np.zeros(4096, bool)
    free[1:2048] = True  # 1..2047: orders 0,1,...,9 then one order 10
    assert az.free_runs(free) == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    # the same run seen from an excerpt starting at pfn 512: alignment is absolute
    assert az.free_runs(free[512:], 512) == [0] * 9 + [1, 1]


def test_block_map_kinds() -> None:
    classes = np.full(5 * 512, C.FREE, np.uint8)
    classes[512:1024] = C.ANON
    classes[1024] = C.SLAB
    classes[1025] = C.RESERVED
    classes[1536:2048] = C.FILE
    classes[2048:2050] = C.HOLE
    _, kinds = az.analyze_classes(classes)
    assert list(kinds) == [az.BlockKind.FREE, az.BlockKind.ANON, az.BlockKind.RESERVED,
                           az.BlockKind.FILE, az.BlockKind.HOLE]


# ---- recording (from a fake /proc) ---------------------------------------------------------
def fake_proc(tmp_path, words: list[int]):  # noqa: ANN001, ANN201
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "kpageflags").write_bytes(np.array(words, dtype="<u8").tobytes())
    (proc / "buddyinfo").write_text("Node 0, zone   Normal   1 2 3\n")
    (proc / "iomem").write_text("00000000-00001fff : System RAM\n")
    return proc


def test_read_kpageflags_in_chunks(tmp_path) -> None:  # noqa: ANN001
    words = [bits(sn.KPF_BUDDY), 0, bits(sn.KPF_SLAB), 1 << 63, 5, 6, 7]
    proc = fake_proc(tmp_path, words)
    got = sn.read_kpageflags(proc / "kpageflags", chunk=3)
    assert got.dtype == np.uint64 and list(got) == words


def test_record_from_fake_proc_round_trips(tmp_path) -> None:  # noqa: ANN001
    proc = fake_proc(tmp_path, [bits(sn.KPF_BUDDY), bits(sn.KPF_SLAB), 0])
    snap = sn.record(proc)
    assert snap.frames == 3 and snap.origin == "recorded"
    assert snap.texts["buddyinfo"].startswith("Node 0") and snap.texts["zoneinfo"] == ""
    sn.save(snap, tmp_path / "s.npz")
    back = sn.load(tmp_path / "s.npz")
    assert list(back.flags) == list(snap.flags) and back.texts == snap.texts
    # iomem's RAM is bytes 0-0x1fff: pfns 0 and 1; pfn 2 is a hole
    assert list(back.classes()) == [C.FREE, C.SLAB, C.HOLE]


@pytest.mark.parametrize("content,says", [
    (None, "no such file"),
    (b"", "read no frames"),
    (b"1234567", "not a whole number of 8-byte words"),
])
def test_record_errors(tmp_path, content, says) -> None:  # noqa: ANN001
    proc = tmp_path / "proc"
    proc.mkdir()
    if content is not None:
        (proc / "kpageflags").write_bytes(content)
    with pytest.raises(sn.SnapshotError, match=says):
        sn.record(proc)


def test_record_without_root(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    proc = fake_proc(tmp_path, [0])

    def denied(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sn.os, "open", denied)
    with pytest.raises(sn.SnapshotError, match="needs root"):
        sn.record(proc)


def test_record_on_another_os(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(sn.sys, "platform", "darwin")
    with pytest.raises(sn.SnapshotError, match="needs Linux"):
        sn.record()


# ---- loading damaged files -----------------------------------------------------------------
def npz(**arrays) -> bytes:  # noqa: ANN003
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


GOOD = dict(format=np.array(sn.FORMAT), flags=np.zeros(4, "<u8"), pfn0=np.array(0, np.int64),
            origin=np.array("recorded"))


def _huge_header() -> bytes:
    buf = io.BytesIO()
    header = {"descr": "<u8", "fortran_order": False, "shape": (1 << 40,)}
    np.lib.format.write_array_header_1_0(buf, header)
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w") as zf:
        for k, v in GOOD.items():
            if k != "flags":
                a = io.BytesIO()
                np.save(a, v)
                zf.writestr(f"{k}.npy", a.getvalue())
        zf.writestr("flags.npy", buf.getvalue())
    return zb.getvalue()


@pytest.mark.parametrize("data,says", [
    (b"garbage", "not a snapshot"),
    (npz(**{k: v for k, v in GOOD.items() if k != "flags"}), "flags: missing"),
    (npz(**{**GOOD, "format": np.array("other/2")}), "format: expected"),
    (npz(**{**GOOD, "flags": np.zeros(4, np.float64)}), "flags: expected a 1-d u8"),
    (npz(**{**GOOD, "flags": np.zeros((2, 2), "<u8")}), "flags: expected a 1-d"),
    (npz(**{**GOOD, "flags": np.zeros(0, "<u8")}), "flags: no frames"),
    (npz(**{**GOOD, "pfn0": np.array(7, np.int64)}), "pfn0: 7 is not a multiple of 512"),
    (npz(**{**GOOD, "origin": np.array("guessed")}), "origin: expected"),
    (npz(**{**GOOD, "flags": np.array([object()], dtype=object)}), "flags: expected"),
    (_huge_header(), "flags: 1099511627776 items, more than the limit"),
])
def test_load_refuses_bad_files(tmp_path, data: bytes, says: str) -> None:  # noqa: ANN001
    p = tmp_path / "bad.npz"
    p.write_bytes(data)
    with pytest.raises(sn.SnapshotError, match=says) as info:
        sn.load(p)
    assert str(info.value).startswith(str(p))


def test_load_truncated_and_flipped(tmp_path, shipped: sn.Snapshot) -> None:  # noqa: ANN001
    data = sn.to_bytes(shipped)
    p = tmp_path / "cut.npz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(sn.SnapshotError):
        sn.load(p)
    # damage the compressed flags in the middle of the archive
    raw = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("flags.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 200, start + 260):
        raw[i] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(sn.SnapshotError, match="flags: corrupt"):
        sn.load(p)


def test_load_missing_and_directory(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(sn.SnapshotError, match="no such file"):
        sn.load(tmp_path / "nope.npz")
    with pytest.raises(sn.SnapshotError, match="is a directory"):
        sn.load(tmp_path)


def test_compressed_size_stays_small(shipped: sn.Snapshot) -> None:
    assert len(sn.to_bytes(shipped)) < 64 * 1024
    assert os.path.getsize(synth.PATH) < 64 * 1024
