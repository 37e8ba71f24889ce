"""Loading clang-built BPF ELF objects (``clang -target bpf -c``) into Programs.

The conventions are libbpf's:

* every executable section other than ``.text`` is one program, and its
  name is the hook (``SEC("placement")``); an object may hold several;
* functions of ``.text`` (or of another program section) that a program
  calls (``R_BPF_64_32`` relocations, or a plain pc-relative call) are
  appended to it, once each, and the calls re-targeted: subprograms shared
  by several programs are copied into each;
* maps are the BTF-defined ones of ``.maps`` (type, key and value sizes and
  max_entries read from BTF, :mod:`bpfvm.asm.btf`), the legacy ``struct
  bpf_map_def`` ones of ``maps``, and one single-entry array map per
  non-empty ``.rodata*``, ``.data*`` and ``.bss*`` section, holding its
  contents (read-only for ``.rodata``); every program of an object gets
  the same map list, in that order;
* ``R_BPF_64_64`` relocations on ``lddw`` become map handles
  (``map[NAME]``) or addresses inside a data section's map
  (``map_value[NAME]+OFF``);
* ``BPFVM_OBJECT(name, bytes)`` of ``bpfvm.h`` (a ``__u64`` named
  ``__bpfvm_object_<name>`` in section ``.bpfvm.objects``) declares the
  size of an object the hook points at, for every program of the file, as
  ``.object NAME SIZE`` does in assembly;
* the source map comes from ``.BTF.ext`` line info: every instruction
  names its C file and line, with the line's text.

ELF parsing is pyelftools'.  The header, the section table and every
offset a relocation uses are checked first, and any exception pyelftools
raises is converted at this module's boundary, so a malformed object is an
:class:`ObjectError` (exit 2) reading ``FILE: what is wrong``, never a
traceback.
"""

from __future__ import annotations

import io
import os
import struct
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from bpfvm import isa
from bpfvm.errors import BpfvmError
from bpfvm.isa.insn import Insn, decode
from bpfvm.limits import MAX_OBJECT_SIZE, format_size
from bpfvm.program import MapDef, Program, SourceLoc

EM_BPF = 247
ET_REL = 1
MAX_SECTIONS = 1024
R_BPF_64_64, R_BPF_64_32 = 1, 10
RELOC_NAMES = {0: "R_BPF_NONE", 1: "R_BPF_64_64", 2: "R_BPF_64_ABS64", 3: "R_BPF_64_ABS32",
               4: "R_BPF_64_NODYLD32", 10: "R_BPF_64_32"}
SHT_NULL, SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 0, 2, 4, 8, 9
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
MAP_TYPES = {1: "hash", 2: "array"}  # kernel enum bpf_map_type -> bpfvm kind
DATA_PREFIXES = (".rodata", ".data", ".bss")
OBJECTS_SECTION = ".bpfvm.objects"  # BPFVM_OBJECT(name, bytes) declarations
OBJECT_PREFIX = "__bpfvm_object_"
_EHDR = struct.Struct("<HHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_MACHINES = {3: "x86", 40: "ARM", 62: "x86-64", 183: "AArch64", 243: "RISC-V"}
_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
LDDW = 0x18
CALL = 0x85


class ObjectError(BpfvmError):
    """A malformed or unsupported BPF object file."""


@dataclass(frozen=True)
class _Sym:
    index: int
    name: str
    kind: str  # STT_*
    bind: str
    shndx: int | str
    value: int
    size: int


def load_object_file(path: str | Path, stem: str | None = None) -> list[Program]:
    """Every program of the object at ``path`` (named after ``stem``, by default
    the file's)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ObjectError(f"{path}: {exc.strerror or exc}") from None
    return load_object(data, str(path), stem)


def load_object(data: bytes, filename: str = "<object>",
                stem: str | None = None) -> list[Program]:
    """Every program of an ELF object, one per program section; named
    ``stem`` (one program) or ``stem:section``."""
    from elftools.common.exceptions import ELFError
    from elftools.construct.core import ConstructError

    from bpfvm.asm.btf import BtfError

    check_header(data, filename)
    try:
        return _Object(data, filename).programs(stem or Path(filename).stem)
    except (BtfError, ObjectError) as exc:
        text = str(exc)
        raise ObjectError(text if text.startswith(filename) else f"{filename}: {text}") from None
    except (ELFError, ConstructError, struct.error, ValueError, IndexError, KeyError,
            UnicodeDecodeError, OverflowError) as exc:
        raise ObjectError(f"{filename}: malformed ELF object ({type(exc).__name__}: "
                          f"{exc})") from None


def check_header(data: bytes, filename: str) -> None:
    """Check the ELF header and section table against the file; raises ObjectError."""
    def bad(message: str) -> ObjectError:
        return ObjectError(f"{filename}: {message}")

    size = len(data)
    if size < 16:
        raise bad(f"truncated ELF identification ({size} bytes, 16 needed)")
    if data[:4] != b"\x7fELF":
        raise bad("not an ELF file (bad magic)")
    if data[4] != 2:
        got = {1: "32-bit (ELFCLASS32)"}.get(data[4], f"invalid ({data[4]})")
        raise bad(f"wrong class: {got}; BPF objects are 64-bit (ELFCLASS64)")
    if data[5] != 1:
        got = {2: "big-endian"}.get(data[5], f"invalid ({data[5]})")
        raise bad(f"wrong byte order: {got}; bpfvm loads little-endian objects "
                  "(clang -target bpfel)")
    if data[6] != 1:
        raise bad(f"wrong ELF version {data[6]} in the identification (expected 1)")
    if size < 64:
        raise bad(f"truncated ELF header ({size} bytes, 64 needed)")
    (e_type, machine, version, _entry, _phoff, shoff, _flags, _ehsize, _phentsize, _phnum,
     shentsize, shnum, shstrndx) = _EHDR.unpack_from(data, 16)
    if e_type != ET_REL:
        raise bad(f"wrong type: {_TYPES.get(e_type, e_type)}; expected a relocatable object "
                  "(ET_REL, made with clang -c)")
    if machine != EM_BPF:
        name = f" ({_MACHINES[machine]})" if machine in _MACHINES else ""
        raise bad(f"wrong machine: {machine}{name}; expected EM_BPF ({EM_BPF}): compile with "
                  "-target bpf")
    if version != 1:
        raise bad(f"wrong ELF version {version} (expected 1)")
    if shnum == 0:
        raise bad("no section header table")
    if shnum > MAX_SECTIONS:
        raise bad(f"too many sections: {shnum} (at most {MAX_SECTIONS})")
    if shentsize != _SHDR.size:
        raise bad(f"section header size {shentsize} (expected {_SHDR.size})")
    if shoff + shnum * shentsize > size:
        raise bad(f"section header table at offset {shoff} ({shnum} entries) runs past the "
                  f"end of the file ({size} bytes)")
    if shstrndx >= shnum:
        raise bad(f"section name table index {shstrndx} out of range ({shnum} sections)")
    names_hdr = _SHDR.unpack_from(data, shoff + shstrndx * shentsize)
    for i in range(shnum):
        (name, kind, _fl, _addr, off, sz, link, info, _al, _es) = \
            _SHDR.unpack_from(data, shoff + i * shentsize)
        if kind not in (SHT_NULL, SHT_NOBITS) and off + sz > size:
            raise bad(f"section {i}: offset {off} + size {sz} runs past the end of the file "
                      f"({size} bytes)")
        if i and name >= names_hdr[5]:
            raise bad(f"section {i}: name offset {name} outside the section name table")
        if kind in (SHT_SYMTAB, SHT_REL, SHT_RELA) and link >= shnum:
            raise bad(f"section {i}: link {link} out of range ({shnum} sections)")
        if kind in (SHT_REL, SHT_RELA) and info >= shnum:
            raise bad(f"section {i}: relocated section index {info} out of range "
                      f"({shnum} sections)")


class _Object:
    """One parsed object: sections, symbols, relocations, maps, line info."""

    def __init__(self, data: bytes, filename: str) -> None:
        from elftools.elf.elffile import ELFFile

        self.filename = filename
        self.elf = ELFFile(io.BytesIO(data))
        self.sections = list(self.elf.iter_sections())
        self.names = [s.name for s in self.sections]
        self.symbols = self._symbols()
        self.relocs = self._relocations()
        self.btf = self._btf()
        self.maps: list[MapDef] = []
        self.map_at: dict[tuple[int, int], int] = {}  # (section, offset) -> map index
        self.data_map: dict[int, int] = {}  # data section index -> map index
        self._btf_maps()
        self._legacy_maps()
        self._data_maps()
        self.objects = self._declared_objects()
        self.lines = self._lines()
        self._line_offs: dict[int, list[int]] = {}
        self._locs: dict[tuple[int, int], SourceLoc] = {}

    # -- tables ----------------------------------------------------------
    def _symbols(self) -> list[_Sym]:
        tabs = [s for s in self.sections if s["sh_type"] == "SHT_SYMTAB"]
        if not tabs:
            return []
        out = []
        for i, s in enumerate(tabs[0].iter_symbols()):
            shndx = s["st_shndx"]
            name = s.name
            if s["st_info"]["type"] == "STT_SECTION" and isinstance(shndx, int):
                if shndx >= len(self.sections):
                    raise ObjectError(f"symbol {i}: section index {shndx} out of range")
                name = self.names[shndx]
            out.append(_Sym(i, name, s["st_info"]["type"], s["st_info"]["bind"], shndx,
                            s["st_value"], s["st_size"]))
        return out

    def _relocations(self) -> dict[int, dict[int, tuple[int, _Sym]]]:
        """Relocations of executable sections: section -> offset -> (type, symbol)."""
        out: dict[int, dict[int, tuple[int, _Sym]]] = {}
        for sec in self.sections:
            kind = sec["sh_type"]
            if kind not in ("SHT_REL", "SHT_RELA"):
                continue
            target = sec["sh_info"]
            if not self._is_code(target):
                continue
            tname = self.names[target]
            if kind == "SHT_RELA":
                raise ObjectError(f"{sec.name}: RELA relocations of {tname} are not supported "
                                  "(BPF objects use REL)")
            if not self.symbols:
                raise ObjectError(f"missing .symtab (needed by the relocations in {sec.name})")
            tsize = self.sections[target]["sh_size"]
            table = out.setdefault(target, {})
            for k, rel in enumerate(sec.iter_relocations()):
                off, sym, rtype = rel["r_offset"], rel["r_info_sym"], rel["r_info_type"]
                where = f"{sec.name} entry {k} ({tname}+{off:#x})"
                if off % 8 or off + 8 > tsize:
                    raise ObjectError(f"{where}: offset outside the {tsize}-byte section "
                                      "or not on an instruction")
                if sym >= len(self.symbols):
                    raise ObjectError(f"{where}: symbol index {sym} out of range "
                                      f"({len(self.symbols)} symbols)")
                if rtype not in (R_BPF_64_64, R_BPF_64_32):
                    name = RELOC_NAMES.get(rtype, "unknown")
                    raise ObjectError(f"{where}: unsupported relocation type {rtype} ({name}) "
                                      "on an instruction")
                table[off] = (rtype, self.symbols[sym])
        return out

    def _btf(self):
        from bpfvm.asm.btf import Btf

        sec = self.section(".BTF")
        return Btf(sec.data()) if sec is not None else None

    def _lines(self) -> dict[str, list]:
        from bpfvm.asm.btf import line_info

        sec = self.section(".BTF.ext")
        if sec is None or self.btf is None:
            return {}
        return line_info(sec.data(), self.btf)

    def section(self, name: str):
        """The first section called ``name``, or None."""
        return self.sections[self.names.index(name)] if name in self.names else None

    def _is_code(self, index: int) -> bool:
        sec = self.sections[index]
        return sec["sh_type"] == "SHT_PROGBITS" and bool(sec["sh_flags"] & SHF_EXECINSTR)

    def _objects_in(self, index: int) -> list[_Sym]:
        return sorted((s for s in self.symbols if s.shndx == index and s.kind == "STT_OBJECT"),
                      key=lambda s: s.value)

    # -- maps ------------------------------------------------------------
    def _add_map(self, section: int, offset: int, m: MapDef) -> None:
        if (why := m.problem()) is not None:
            raise ObjectError(f"map '{m.name}': {why}")
        self.map_at[(section, offset)] = len(self.maps)
        self.maps.append(m)

    def _btf_maps(self) -> None:
        from bpfvm.asm import btf as B

        if ".maps" not in self.names:
            return
        index = self.names.index(".maps")
        if self.btf is None:
            raise ObjectError("missing .BTF section (it defines the maps of .maps)")
        types = {v.name: v.size_or_type for v, _off, _size in self.btf.datasec(".maps")}
        for sym in self._objects_in(index):
            if sym.name not in types:
                raise ObjectError(f"map '{sym.name}': no BTF definition in the .maps section")
            struct_t = self.btf.resolve(types[sym.name])
            if struct_t.kind != B.STRUCT:
                raise ObjectError(f"map '{sym.name}': BTF type is not a struct")
            attrs: dict[str, int] = {}
            for mem in struct_t.members:
                ptr = self.btf.resolve(mem.type)
                if ptr.kind != B.PTR:
                    raise ObjectError(f"map '{sym.name}': member '{mem.name}' is not a "
                                      "__uint() or __type() field")
                if mem.name in ("key", "value"):
                    attrs[f"{mem.name}_size"] = self.btf.size_of(ptr.size_or_type)
                else:
                    arr = self.btf.resolve(ptr.size_or_type)
                    if arr.kind != B.ARRAY:
                        raise ObjectError(f"map '{sym.name}': member '{mem.name}' is not a "
                                          "__uint() field")
                    attrs[mem.name] = arr.extra[2]
            self._add_map(index, sym.value, self._map_def(sym.name, attrs))

    def _map_def(self, name: str, attrs: dict[str, int]) -> MapDef:
        for key in ("type", "key_size", "value_size", "max_entries"):
            if key not in attrs:
                raise ObjectError(f"map '{name}': no {key}")
        kind = MAP_TYPES.get(attrs["type"])
        if kind is None:
            raise ObjectError(f"map '{name}': map type {attrs['type']} is not supported "
                              f"(BPF_MAP_TYPE_HASH 1, BPF_MAP_TYPE_ARRAY 2)")
        return MapDef(name, kind, attrs["key_size"], attrs["value_size"], attrs["max_entries"])

    def _legacy_maps(self) -> None:
        if "maps" not in self.names:
            return
        index = self.names.index("maps")
        data = self.sections[index].data()
        for sym in self._objects_in(index):
            if sym.value + 16 > len(data):
                raise ObjectError(f"map '{sym.name}': definition at maps+{sym.value} runs past "
                                  f"the section ({len(data)} bytes)")
            mtype, ks, vs, me = struct.unpack_from("<IIII", data, sym.value)
            attrs = {"type": mtype, "key_size": ks, "value_size": vs, "max_entries": me}
            self._add_map(index, sym.value, self._map_def(sym.name, attrs))

    def _data_maps(self) -> None:
        for index, sec in enumerate(self.sections):
            name = sec.name
            if not name.startswith(DATA_PREFIXES) or not sec["sh_flags"] & SHF_ALLOC:
                continue
            size = sec["sh_size"]
            if size == 0:
                continue
            init = b"" if sec["sh_type"] == "SHT_NOBITS" else sec.data().rstrip(b"\0")
            self.data_map[index] = len(self.maps)
            self._add_map(index, -1, MapDef(name, "array", 4, size, 1, init,
                                            name.startswith(".rodata")))

    # -- object sizes ----------------------------------------------------
    def _declared_objects(self) -> dict[str, int]:
        """``BPFVM_OBJECT(name, bytes)``: the sizes of ``.bpfvm.objects``."""
        sec = self.section(OBJECTS_SECTION)
        if sec is None:
            return {}
        index = self.names.index(OBJECTS_SECTION)
        data = b"" if sec["sh_type"] == "SHT_NOBITS" else sec.data()
        out: dict[str, int] = {}
        for sym in self._objects_in(index):
            where = f"{OBJECTS_SECTION}: '{sym.name}'"
            if not sym.name.startswith(OBJECT_PREFIX) or sym.name == OBJECT_PREFIX:
                raise ObjectError(f"{where}: not a declaration (use BPFVM_OBJECT(name, bytes) "
                                  "of bpfvm.h)")
            name = sym.name[len(OBJECT_PREFIX):]
            if sym.size != 8 or sym.value + 8 > len(data):
                raise ObjectError(f"{where}: expected an 8-byte size inside the section "
                                  f"({sym.size} bytes at offset {sym.value})")
            size = int.from_bytes(data[sym.value:sym.value + 8], "little")
            if not 1 <= size <= MAX_OBJECT_SIZE:
                raise ObjectError(f"BPFVM_OBJECT({name}, ...): {size} bytes is outside 1 byte "
                                  f"to {format_size(MAX_OBJECT_SIZE)}")
            out[name] = size
        return out

    # -- programs --------------------------------------------------------
    def programs(self, stem: str) -> list[Program]:
        progs = [i for i in range(len(self.sections))
                 if self._is_code(i) and self.names[i] != ".text"
                 and self.sections[i]["sh_size"] > 0]
        if not progs:
            raise ObjectError("no programs: no executable section other than .text "
                              "(put each program in SEC(\"<hook>\"))")
        out = []
        for index in progs:
            name = self.names[index]
            globals_ = [s for s in self.symbols if s.shndx == index and s.kind == "STT_FUNC"
                        and s.bind == "STB_GLOBAL"]
            if len(globals_) > 1:
                raise ObjectError(f"section {name} holds {len(globals_)} programs "
                                  f"({', '.join(s.name for s in globals_)}); one per section")
            insns, origin = _Linker(self, index).link()
            source = [self._loc(sec, off) for sec, off in origin]
            label = name if len(progs) == 1 else f"{stem}:{name}"
            out.append(Program(insns, list(self.maps), name, source,
                               stem if len(progs) == 1 else label, dict(self.objects)))
        return out

    def _loc(self, section: int, offset: int) -> SourceLoc | None:
        recs = self.lines.get(self.names[section])
        if not recs:
            return None
        offs = self._line_offs.get(section)
        if offs is None:
            offs = self._line_offs[section] = [r.insn_off for r in recs]
        k = bisect_right(offs, offset) - 1
        if k < 0:
            return None
        loc = self._locs.get((section, k))
        if loc is None:
            rec = recs[k]
            loc = self._locs[(section, k)] = SourceLoc(_display(rec.file), rec.line, rec.text)
        return loc

    def code(self, index: int) -> bytes:
        data = self.sections[index].data()
        if len(data) % 8:
            raise ObjectError(f"section {self.names[index]}: size {len(data)} is not a "
                              "multiple of 8 (instructions are 8 bytes)")
        return data

    def function_at(self, index: int, offset: int) -> tuple[int, int] | None:
        """(start, size) of the function of section ``index`` starting at ``offset``."""
        starts = sorted({s.value for s in self.symbols
                         if s.shndx == index and s.kind == "STT_FUNC"})
        if offset not in starts:
            return None
        end = self.sections[index]["sh_size"]
        for s in self.symbols:
            if s.shndx == index and s.kind == "STT_FUNC" and s.value == offset and s.size:
                return offset, s.size
        later = [v for v in starts if v > offset]
        return offset, (later[0] if later else end) - offset


def _display(file: str) -> str:
    """A source file name as recorded, relative to the working directory when inside it."""
    if os.path.isabs(file):
        rel = os.path.relpath(file)
        return file if rel.startswith("..") else rel
    return file


class _Linker:
    """One program: its section, then every function it calls, calls re-targeted."""

    def __init__(self, obj: _Object, index: int) -> None:
        self.obj = obj
        self.main = index
        self.insns: list[Insn] = []
        self.origin: list[tuple[int, int]] = []
        self.placed: dict[tuple[int, int], int] = {}  # (section, start) -> first slot
        self.units: list[tuple[int, int, int]] = []  # (section, start, size), placed in order
        self.calls: list[tuple[int, int, int]] = []  # (slot, section, target offset)

    def where(self, section: int, off: int) -> str:
        return f"{self.obj.names[section]}+{off:#x}"

    def link(self) -> tuple[list[Insn], list[tuple[int, int]]]:
        self._place(self.main, 0, self.obj.sections[self.main]["sh_size"])
        k = 0
        while k < len(self.units):
            self._copy(*self.units[k])
            k += 1
        for slot, section, target in self.calls:
            start = self._unit_of(section, target, slot)
            dest = self.placed[start] + (target - start[1]) // 8
            old = self.insns[slot]
            self.insns[slot] = Insn(old.opcode, old.dst, old.src, old.off, dest - slot - 1)
        return self.insns, self.origin

    def _place(self, section: int, start: int, size: int) -> None:
        if (section, start) not in self.placed:
            self.placed[(section, start)] = -1
            self.units.append((section, start, size))

    def _unit_of(self, section: int, target: int, slot: int) -> tuple[int, int]:
        if section == self.main:
            return (section, 0)
        for sec, start, size in self.units:
            if sec == section and start <= target < start + size:
                return (sec, start)
        raise AssertionError("call target not placed")  # _copy placed it

    def _copy(self, section: int, start: int, size: int) -> None:
        obj = self.obj
        code = obj.code(section)
        body = decode(code[start:start + size])
        base = len(self.insns)
        self.placed[(section, start)] = base
        relocs = obj.relocs.get(section, {})
        self.insns.extend(body)
        self.origin.extend((section, start + 8 * i) for i in range(len(body)))
        for i, insn in enumerate(body):
            off = start + 8 * i
            rel = relocs.get(off)
            if rel is not None:
                self._relocate(section, off, base + i, *rel)
            elif insn.opcode == CALL and insn.src == isa.CALL_LOCAL:
                target = off + 8 * (insn.imm + 1)
                self._call(section, off, base + i, section, target)

    def _call(self, section: int, off: int, slot: int, tsec: int, target: int) -> None:
        obj = self.obj
        if not 0 <= target < obj.sections[tsec]["sh_size"] or target % 8:
            raise ObjectError(f"call at {self.where(section, off)}: target "
                              f"{self.where(tsec, target)} is outside the section")
        if not obj._is_code(tsec):
            raise ObjectError(f"call at {self.where(section, off)}: target section "
                              f"{obj.names[tsec]} is not code")
        if tsec != self.main:
            inside = any(sec == tsec and st <= target < st + sz for sec, st, sz in self.units)
            if not inside:
                fn = obj.function_at(tsec, target)
                if fn is None:
                    raise ObjectError(f"call at {self.where(section, off)}: no function starts "
                                      f"at {self.where(tsec, target)}")
                self._place(tsec, *fn)
        self.calls.append((slot, tsec, target))

    def _relocate(self, section: int, off: int, slot: int, rtype: int, sym: _Sym) -> None:
        obj = self.obj
        insn = self.insns[slot]
        where = self.where(section, off)
        if not isinstance(sym.shndx, int) or sym.shndx == 0:
            raise ObjectError(f"relocation at {where} refers to undefined symbol "
                              f"'{sym.name or sym.index}' ({sym.shndx}; externs are not supported)")
        if sym.shndx >= len(obj.sections):
            raise ObjectError(f"relocation at {where}: symbol '{sym.name}' is in section "
                              f"{sym.shndx}, out of range")
        if rtype == R_BPF_64_32:
            if insn.opcode != CALL or insn.src != isa.CALL_LOCAL:
                raise ObjectError(f"R_BPF_64_32 relocation at {where} is not on a local call")
            self._call(section, off, slot, sym.shndx, sym.value + 8 * (insn.imm + 1))
            return
        if insn.opcode != LDDW or slot + 1 >= len(self.insns):
            raise ObjectError(f"R_BPF_64_64 relocation at {where} is not on a lddw instruction")
        second = self.insns[slot + 1]
        index = obj.map_at.get((sym.shndx, sym.value))
        if index is not None:
            self.insns[slot] = Insn(LDDW, insn.dst, isa.PSEUDO_MAP_FD, 0, index)
            self.insns[slot + 1] = Insn(0, 0, 0, 0, 0)
            return
        index = obj.data_map.get(sym.shndx)
        if index is None:
            raise ObjectError(f"lddw at {where} refers to '{sym.name}' in section "
                              f"{obj.names[sym.shndx]}, which is neither a map nor a data "
                              "section")
        value = sym.value + insn.imm
        size = obj.maps[index].value_size
        if not 0 <= value < size or second.imm:
            raise ObjectError(f"lddw at {where}: offset {value} outside "
                              f"{obj.names[sym.shndx]} ({size} bytes)")
        self.insns[slot] = Insn(LDDW, insn.dst, isa.PSEUDO_MAP_VALUE, 0, index)
        self.insns[slot + 1] = Insn(0, 0, 0, 0, value)
