"""A small reader of BTF and BTF.ext, the type and line information clang
emits for BPF objects (the kernel's ``Documentation/bpf/btf.rst``).

:class:`Btf` parses the ``.BTF`` section: the header, the string table and
every type record (all kinds up to ENUM64), with what the loader needs on
top: the size of a type (through typedefs, qualifiers and arrays), struct
members, and data-section (DATASEC) variables.  :func:`line_info` parses the
line-info part of ``.BTF.ext``: per ELF section, records of (byte offset of
the instruction, file, line, column, source line text).

Only little-endian BTF is accepted (bpfvm objects are little-endian).
Anything malformed raises :class:`BtfError` saying what and where; the
caller adds the file name.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bpfvm.errors import BpfvmError

MAGIC = 0xEB9F
# kinds
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = range(1, 12)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
_QUALIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)
_MAX_DEPTH = 32
_TYPE = struct.Struct("<III")


class BtfError(BpfvmError):
    """Malformed BTF or BTF.ext."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    type: int
    offset: int  # struct/union: bit offset; datasec: byte offset; enum: value


@dataclass(frozen=True, slots=True)
class BtfType:
    id: int
    kind: int
    name: str
    size_or_type: int
    vlen: int
    extra: tuple = ()  # INT: (encoding,); ARRAY: (elem, index, nelems)
    members: tuple[Member, ...] = ()


@dataclass(frozen=True, slots=True)
class LineInfo:
    insn_off: int  # byte offset of the instruction in its section
    file: str
    line: int
    col: int
    text: str


def _cstr(strings: bytes, off: int, what: str) -> str:
    if not 0 <= off < max(len(strings), 1):
        raise BtfError(f"{what}: string offset {off} outside the string table "
                       f"({len(strings)} bytes)")
    end = strings.find(b"\0", off)
    if end < 0:
        raise BtfError(f"{what}: string at offset {off} is not NUL-terminated")
    return strings[off:end].decode("utf-8", "replace")


def _header(data: bytes, what: str, fields: int) -> tuple[int, ...]:
    if len(data) < 8:
        raise BtfError(f"{what}: truncated header ({len(data)} bytes)")
    magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != MAGIC:
        if magic == 0x9FEB:
            raise BtfError(f"{what}: big-endian BTF is not supported")
        raise BtfError(f"{what}: bad magic {magic:#06x} (expected {MAGIC:#06x})")
    if version != 1:
        raise BtfError(f"{what}: unsupported version {version}")
    need = 8 + 4 * fields
    if hdr_len < need or hdr_len > len(data):
        raise BtfError(f"{what}: header length {hdr_len} invalid (section is {len(data)} "
                       f"bytes, header needs {need})")
    return (hdr_len, *struct.unpack_from(f"<{fields}I", data, 8))


def _part(data: bytes, start: int, off: int, length: int, what: str) -> bytes:
    lo, hi = start + off, start + off + length
    if hi > len(data):
        raise BtfError(f"{what}: bytes {lo}..{hi} run past the end of the section "
                       f"({len(data)} bytes)")
    return data[lo:hi]


class Btf:
    """The types and strings of a ``.BTF`` section."""

    def __init__(self, data: bytes) -> None:
        hdr_len, type_off, type_len, str_off, str_len = _header(data, ".BTF", 4)
        self.strings = _part(data, hdr_len, str_off, str_len, ".BTF strings")
        self.types: list[BtfType | None] = [None]  # id 0 is void
        self._parse(_part(data, hdr_len, type_off, type_len, ".BTF types"))

    def string(self, off: int) -> str:
        return _cstr(self.strings, off, ".BTF")

    def _parse(self, raw: bytes) -> None:
        pos = 0
        while pos < len(raw):
            tid = len(self.types)
            where = f".BTF type {tid}"
            if pos + 12 > len(raw):
                raise BtfError(f"{where}: truncated record")
            name_off, info, size_or_type = _TYPE.unpack_from(raw, pos)
            pos += 12
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            name = _cstr(self.strings, name_off, where)
            extra: tuple = ()
            members: list[Member] = []

            def take(n: int, where: str = where) -> bytes:
                nonlocal pos
                if pos + n > len(raw):
                    raise BtfError(f"{where}: truncated record")
                chunk = raw[pos:pos + n]
                pos += n
                return chunk

            if kind == INT or kind in (VAR, DECL_TAG):
                extra = struct.unpack("<I", take(4))
            elif kind == ARRAY:
                extra = struct.unpack("<III", take(12))
            elif kind in (STRUCT, UNION, DATASEC):
                for _ in range(vlen):
                    a, b, c = struct.unpack("<III", take(12))
                    if kind == DATASEC:  # (variable's type, byte offset, size)
                        members.append(Member("", a, b))
                        extra += (c,)
                    else:  # (name, type, offset: bits, with kflag bitfield size above 24)
                        members.append(Member(_cstr(self.strings, a, where), b,
                                              c & 0xFFFFFF if info >> 31 else c))
            elif kind == ENUM:
                for _ in range(vlen):
                    m_name, val = struct.unpack("<Ii", take(8))
                    members.append(Member(_cstr(self.strings, m_name, where), 0, val))
            elif kind == ENUM64:
                for _ in range(vlen):
                    m_name, lo, hi = struct.unpack("<III", take(12))
                    members.append(Member(_cstr(self.strings, m_name, where), 0, lo | hi << 32))
            elif kind == FUNC_PROTO:
                for _ in range(vlen):
                    m_name, m_type = struct.unpack("<II", take(8))
                    members.append(Member(_cstr(self.strings, m_name, where), m_type, 0))
            elif kind not in (PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT,
                              TYPE_TAG):
                raise BtfError(f"{where}: unknown kind {kind}")
            self.types.append(BtfType(tid, kind, name, size_or_type, vlen, extra,
                                      tuple(members)))

    # -- queries ---------------------------------------------------------
    def get(self, tid: int, what: str = "type") -> BtfType:
        if not 0 < tid < len(self.types):
            raise BtfError(f".BTF: {what} refers to type id {tid}, outside "
                           f"1..{len(self.types) - 1}")
        t = self.types[tid]
        assert t is not None
        return t

    def resolve(self, tid: int) -> BtfType:
        """The type behind typedefs and qualifiers."""
        for _ in range(_MAX_DEPTH):
            t = self.get(tid)
            if t.kind not in _QUALIFIERS:
                return t
            tid = t.size_or_type
        raise BtfError(f".BTF: type {tid}: qualifier chain too long (a loop?)")

    def size_of(self, tid: int, depth: int = 0) -> int:
        if depth > _MAX_DEPTH:
            raise BtfError(f".BTF: type {tid}: nested too deeply")
        t = self.resolve(tid)
        if t.kind in (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC):
            return t.size_or_type
        if t.kind == PTR:
            return 8
        if t.kind == ARRAY:
            return t.extra[2] * self.size_of(t.extra[0], depth + 1)
        raise BtfError(f".BTF: type {t.id} ({t.name or 'anonymous'}) has no size")

    def datasec(self, name: str) -> list[tuple[BtfType, int, int]]:
        """The variables of data section ``name``: (VAR type, offset, size)."""
        for t in self.types[1:]:
            assert t is not None
            if t.kind == DATASEC and t.name == name:
                return [(self.get(m.type, f"{name} variable"), m.offset, size)
                        for m, size in zip(t.members, t.extra, strict=True)]
        return []


def line_info(ext: bytes, btf: Btf) -> dict[str, list[LineInfo]]:
    """Line records of ``.BTF.ext`` by ELF section name, sorted by offset."""
    hdr_len, _fo, _fl, line_off, line_len = _header(ext, ".BTF.ext", 4)
    raw = _part(ext, hdr_len, line_off, line_len, ".BTF.ext line info")
    out: dict[str, list[LineInfo]] = {}
    if not raw:
        return out
    if len(raw) < 4:
        raise BtfError(".BTF.ext line info: truncated")
    (rec_size,) = struct.unpack_from("<I", raw, 0)
    if rec_size < 16:
        raise BtfError(f".BTF.ext line info: record size {rec_size} < 16")
    pos = 4
    while pos < len(raw):
        if pos + 8 > len(raw):
            raise BtfError(".BTF.ext line info: truncated section header")
        sec_off, count = struct.unpack_from("<II", raw, pos)
        pos += 8
        sec = _cstr(btf.strings, sec_off, ".BTF.ext line info")
        if pos + count * rec_size > len(raw):
            raise BtfError(f".BTF.ext line info for {sec}: {count} records run past the end")
        recs = out.setdefault(sec, [])
        for _ in range(count):
            insn_off, file_off, text_off, line_col = struct.unpack_from("<IIII", raw, pos)
            pos += rec_size
            recs.append(LineInfo(insn_off, _cstr(btf.strings, file_off, sec),
                                 line_col >> 10, line_col & 0x3FF,
                                 _cstr(btf.strings, text_off, sec).strip()))
        recs.sort(key=lambda r: r.insn_off)
    return out
