"""The compiled grammar kept in the user's cache directory."""

from __future__ import annotations

import lark
import pytest

from bpfvm.asm import grammar_cache, syntax

OPTIONS = {"start": list(syntax._START.values()), "maybe_placeholders": True}
LINES = [("r1 = 5", "kern_line"), ("if r2 > 7 goto +1", "kern_line"),
         ("lddw %r1, 0x100000000", "conf_line"), (".object region 512KiB", "dir_line"),
         ("r0 = *(u32 *)(r1 + 4)", "kern_line"), ("call pc+2", "kern_line")]
BAD = [("r0 = = 1", "kern_line"), ("r0 = $", "kern_line"), ("mov %r0,", "conf_line")]


def _load():
    return grammar_cache.load_parser(syntax._ToRecords(), **OPTIONS)


def _parse_all(parser) -> list:
    return [parser.parse(text, start=start) for text, start in LINES]


def _errors(parser, classes) -> list:
    out = []
    for text, start in BAD:
        with pytest.raises(classes.UnexpectedInput) as exc:
            parser.parse(text, start=start)
        e = exc.value
        out.append((type(e).__name__, e.column, sorted(getattr(e, "expected", None) or []),
                    sorted(getattr(e, "accepts", None) or [])))
    return out


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "bpfvm"


def test_first_load_stores_and_the_next_needs_no_lark(cache_home, monkeypatch):
    parser, classes = _load()
    assert classes.__name__.startswith("bpfvm_asm_grammar_")  # the standalone parser
    files = list(cache_home.glob("asm-grammar-*.pyc"))
    assert len(files) == 1
    assert not list(cache_home.glob(".*tmp"))  # no temporary file left behind

    def no_lark(*args, **kwargs):
        raise AssertionError("lark built a parser although a cache entry exists")

    monkeypatch.setattr(lark.Lark, "__init__", no_lark)
    cached, cached_classes = _load()
    assert _parse_all(cached) == _parse_all(parser)
    assert _parse_all(cached)[0].item.ops[1].value == 5


def test_standalone_and_lark_parse_alike(cache_home, monkeypatch):
    standalone, classes = _load()
    monkeypatch.setattr(grammar_cache, "_build_code", lambda *a: None)
    monkeypatch.setattr(grammar_cache, "_load_code", lambda *a: None)
    own, own_classes = _load()
    assert own_classes is lark
    assert _parse_all(standalone) == _parse_all(own)
    assert _errors(standalone, classes) == _errors(own, own_classes)


def test_corrupt_entry_is_rebuilt(cache_home):
    _load()
    (entry,) = cache_home.glob("asm-grammar-*.pyc")
    entry.write_bytes(b"not bytecode")
    parser, classes = _load()
    assert classes.__name__.startswith("bpfvm_asm_grammar_")
    assert _parse_all(parser)[0].item.ops[1].value == 5
    assert entry.read_bytes() != b"not bytecode"


def test_unwritable_cache_still_parses(cache_home):
    cache_home.write_text("a file where the directory should be")
    parser, classes = _load()
    assert classes.__name__.startswith("bpfvm_asm_grammar_")  # built, just not stored
    assert _parse_all(parser)[0].item.ops[1].value == 5
    assert cache_home.is_file()


def test_key_changes_with_the_grammar_options_and_lark(monkeypatch):
    a = grammar_cache.cache_path("start: A", {"start": ["x"]})
    assert a != grammar_cache.cache_path("start: B", {"start": ["x"]})
    assert a != grammar_cache.cache_path("start: A", {"start": ["y"]})
    assert a == grammar_cache.cache_path("start: A", {"start": ["x"]})
    assert grammar_cache.lark_version() == lark.__version__
    monkeypatch.setattr(grammar_cache, "lark_version", lambda: "0.0-other")
    assert a != grammar_cache.cache_path("start: A", {"start": ["x"]})
