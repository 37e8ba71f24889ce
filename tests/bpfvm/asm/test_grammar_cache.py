"""The compiled grammar kept in the user's cache directory."""

from __future__ import annotations

import pytest

from bpfvm.asm import grammar_cache, syntax

OPTIONS = {"start": list(syntax._START.values()), "maybe_placeholders": True}
LINES = [("r1 = 5", "kern_line"), ("if r2 > 7 goto +1", "kern_line"),
         ("lddw %r1, 0x100000000", "conf_line"), (".object region 512KiB", "dir_line")]


def _parse_all(parser) -> list:
    return [parser.parse(text, start=start) for text, start in LINES]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "bpfvm"


def test_first_load_stores_and_second_reads_the_same_parser(cache_home, monkeypatch):
    built = grammar_cache.load_parser(syntax._ToRecords(), **OPTIONS)
    files = list(cache_home.glob("asm-grammar-*.lark.pickle"))
    assert len(files) == 1
    assert not list(cache_home.glob(".*tmp"))  # no temporary file left behind

    def no_build(*args, **kwargs):
        raise AssertionError("the grammar was rebuilt although a cache entry exists")

    monkeypatch.setattr("lark.Lark.__init__", no_build)
    cached = grammar_cache.load_parser(syntax._ToRecords(), **OPTIONS)
    assert _parse_all(cached) == _parse_all(built)
    assert _parse_all(cached)[0].item.ops[1].value == 5


def test_corrupt_entry_is_rebuilt(cache_home):
    grammar_cache.load_parser(syntax._ToRecords(), **OPTIONS)
    (entry,) = cache_home.glob("asm-grammar-*.lark.pickle")
    entry.write_bytes(b"not a pickle")
    parser = grammar_cache.load_parser(syntax._ToRecords(), **OPTIONS)
    assert _parse_all(parser)[0].item.ops[1].value == 5
    assert entry.read_bytes() != b"not a pickle"


def test_cache_dir_not_a_directory_still_parses(cache_home):
    cache_home.write_text("a file where the directory should be")
    parser = grammar_cache.load_parser(syntax._ToRecords(), **OPTIONS)
    assert _parse_all(parser)[0].item.ops[1].value == 5
    assert cache_home.is_file()


def test_key_changes_with_the_grammar_and_options():
    a = grammar_cache.cache_path("start: A", {"start": ["x"]})
    assert a != grammar_cache.cache_path("start: B", {"start": ["x"]})
    assert a != grammar_cache.cache_path("start: A", {"start": ["y"]})
    assert a == grammar_cache.cache_path("start: A", {"start": ["x"]})
