"""Native code kept in the user's cache (``bpfvm.native.cached_object``,
``bpfvm.usercache``): built once, reused, never used damaged, and an
unwritable cache only costs the build."""

from __future__ import annotations

import ctypes

import pytest

from bpfvm import native, usercache

IR = """
define i64 @twice(i64 %x) {
  %y = shl i64 %x, 1
  ret i64 %y
}
"""


def _run(obj: bytes, x: int) -> int:
    import llvmlite.binding as llvm

    jit = llvm.create_lljit_compiler(native.host_target_machine())
    lib = llvm.JITLibraryBuilder().add_object_img(obj)
    lib.export_symbol("twice")
    tracker = lib.link(jit, f"twice{id(obj)}")
    return ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(tracker["twice"])(x)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "bpfvm"


def test_object_is_built_once_then_read(cache, monkeypatch):
    tm = native.host_target_machine()
    obj = native.cached_object(tm, IR, "t")
    (entry,) = cache.glob("t-*.o")
    assert usercache.read_checked(entry) == obj and _run(obj, 21) == 42
    monkeypatch.setattr(native, "optimize", lambda *a: pytest.fail("built again"))
    assert native.cached_object(tm, IR, "t") == obj


def test_other_text_gets_another_entry(cache):
    tm = native.host_target_machine()
    native.cached_object(tm, IR, "t")
    native.cached_object(tm, IR.replace("shl i64 %x, 1", "shl i64 %x, 2"), "t")
    assert len(list(cache.glob("t-*.o"))) == 2


@pytest.mark.parametrize("damage", [lambda b: b[:40], lambda b: b[:-1] + bytes([b[-1] ^ 1]),
                                    lambda b: b""])
def test_damaged_entry_is_rebuilt_not_used(cache, damage):
    tm = native.host_target_machine()
    obj = native.cached_object(tm, IR, "t")
    (entry,) = cache.glob("t-*.o")
    entry.write_bytes(damage(entry.read_bytes()))
    assert usercache.read_checked(entry) is None
    again = native.cached_object(tm, IR, "t")
    assert again == obj and _run(again, 5) == 10
    assert usercache.read_checked(entry) == obj  # and stored again


def test_unwritable_cache_only_costs_the_build(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    obj = native.cached_object(native.host_target_machine(), IR, "t")
    assert _run(obj, 7) == 14
    assert not usercache.write_atomic(blocker / "bpfvm" / "x", b"1")
    assert list(tmp_path.iterdir()) == [blocker]  # no temporary file left behind
