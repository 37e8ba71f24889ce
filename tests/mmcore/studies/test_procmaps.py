"""Tests of mmcore.studies.procmaps (recording and parsing /proc/PID/maps)
and of replaying a recorded address space in the page-table study."""

import os

import pytest

from bpfvm.cli import main
from mmcore.studies.pagetables import StudyConfig, maps_layout, measure
from mmcore.studies.procmaps import MapsError, parse_maps, read_maps, snapshot
from tests.conftest import DATA

MAPS = sorted((DATA / "maps").glob("*.maps"))

PLAIN = """\
00400000-00402000 r-xp 00000000 08:01 1 /bin/x
00600000-00601000 rw-p 00000000 00:00 0
7ffd0000-7ffd3000 rw-p 00000000 00:00 0 [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
"""


def test_plain_maps_count_every_page_and_drop_vsyscall():
    vmas = parse_maps(PLAIN)
    assert [(v.start, v.touched_pages, v.path) for v in vmas] == [
        (0x400000, 2, "/bin/x"), (0x600000, 1, ""), (0x7FFD0000, 3, "[stack]")]


def test_recorded_resident_size_limits_touched_pages():
    vmas = parse_maps("1000-5000 rw-p 00000000 00:00 0  # rss_kb=8\n"
                      "9000-a000 rw-p 00000000 00:00 0 [heap]  # rss_kb=0\n")
    assert len(vmas) == 1 and vmas[0].touched_pages == 2 and vmas[0].rss_kb == 8


@pytest.mark.parametrize("text, message", [
    ("hello\n", "f.maps:1: not a maps line"),
    ("2000-1000 rw-p 0 00:00 0\n", "f.maps:1: bad range"),
    ("1000-3000 rw-p 0 00:00 0\n2000-4000 rw-p 0 00:00 0\n", "overlap"),
    ("# nothing\n", "no user-space VMA"),
])
def test_bad_maps_files_say_where(text, message):
    with pytest.raises(MapsError, match=message):
        parse_maps(text, "f.maps")


def test_snapshot_of_this_process_parses_back():
    vmas = parse_maps(snapshot(os.getpid()))
    assert any(v.path == "[stack]" for v in vmas)
    assert all(v.rss_kb is not None for v in vmas)


def test_snapshot_of_a_missing_process():
    with pytest.raises(MapsError, match="cannot read"):
        snapshot(1 << 30)


def test_three_recorded_address_spaces_ship():
    assert [p.stem for p in MAPS] == ["bash", "bpfvm-cli", "python3"]
    for path in MAPS:
        assert path.read_text().startswith("# /proc/")
        assert len(read_maps(path)) > 20


def test_replayed_layout_keeps_recorded_addresses():
    lay = maps_layout(DATA / "maps" / "bash.maps")
    cfg = StudyConfig((lay,), ("radix", "ecpt"), 2 << 30, 100, accesses=2000)
    radix, ecpt = measure(lay, "radix", cfg), measure(lay, "ecpt", cfg)
    pages = sum(v.touched_pages for v in lay.fixed)
    assert radix.mapped_pages == ecpt.mapped_pages == pages
    # sparse real layouts need many radix table pages: one PTE page per 2 MiB touched
    chunks = {(v.start + (i << 12)) >> 21 for v in lay.fixed
              for i in range((v.end - v.start) >> 12)}
    assert radix.pt_pages >= len({c for c in chunks}) // 4
    assert radix.refs_nopwc == 4.0 and ecpt.refs_nopwc == 3.0


def test_cli_snapshot_and_replay(tmp_path, capsys):
    out = tmp_path / "self.maps"
    assert main(["mm", "snapshot-maps", "-o", str(out)]) == 0
    assert read_maps(out)
    assert main(["mm", "snapshot-maps", str(os.getpid()), str(os.getpid()), "-o",
                 str(tmp_path / "d")]) == 0
    assert len(list((tmp_path / "d").glob("*.maps"))) == 1  # same pid twice: one file
    assert main(["mm", "pagetables", str(DATA / "pt" / "tiny.toml"), "--layouts", "bash",
                 "--tables", "radix", "--maps", str(DATA / "maps" / "bash.maps"),
                 "--json", "-"]) == 0
    assert '"layout": "bash"' in capsys.readouterr().out


def test_cli_bad_maps_file_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.maps"
    bad.write_text("nonsense\n")
    assert main(["mm", "pagetables", "--maps", str(bad)]) != 0
    assert "bad.maps:1: not a maps line" in capsys.readouterr().err
