"""Array and hash maps stored in flat buffers that native code can address.

Each map keeps all of its data in one ``bytearray`` (``Map.buf``); the
interpreter exposes it as one memory object and the JIT may compute
addresses into it directly.  The buffer is allocated once and never
replaced nor resized (rehashing happens in place): engines pin it.  The
layouts, exactly:

**ArrayMap** -- ``stride = round_up(value_size, 8)``; the buffer holds
``max_entries * stride`` bytes, zero-initialised; the value of index ``i``
(key: a little-endian u32) starts at byte ``i * stride``.  Bytes between
``value_size`` and ``stride`` are padding.  Elements always exist: lookup of
``i < max_entries`` succeeds (a larger index finds nothing and cannot be
updated: ``-E2BIG``), ``NOEXIST`` updates fail with ``-EEXIST`` and delete
fails with ``-EINVAL``, as in the kernel.

**HashMap** -- ``capacity`` is the smallest power of two ``>= max(4, 2 *
max_entries)``; the buffer is ``capacity`` slots of ``slot_size = 8 +
round_up(key_size, 8) + round_up(value_size, 8)`` bytes.  Slot ``s`` starts
at ``s * slot_size``:

  ====================  ==================================================
  byte 0                state: 0 empty, 1 used, 2 deleted (tombstone)
  bytes 1..7            zero
  bytes 8..             the key (``key_size`` bytes, zero padded to 8)
  ``value_offset``      the value, ``value_offset = 8 + round_up(key_size, 8)``
  ====================  ==================================================

The home slot of a key is ``fnv1a64(key) & (capacity - 1)`` where
``fnv1a64`` is FNV-1a over the key bytes (offset basis
``0xcbf29ce484222325``, prime ``0x100000001b3``, arithmetic modulo 2**64).
Lookup probes linearly (``s = (s + 1) & (capacity - 1)``) from the home slot,
skipping tombstones, until it finds the key in a used slot or reaches an
empty slot (at most ``capacity`` probes).  Insertion reuses the first
tombstone or empty slot on the probe path; when used plus deleted slots would
exceed three quarters of the capacity, the table is rebuilt in place
(entries move, so pointers to values held across an update may then point at
another entry's value -- still inside the map, never outside it).  The entry
count lives in Python (``len(map)``): native code may look up, but updates
and deletes go through :meth:`HashMap.update` / :meth:`HashMap.delete`.

The Python API (``lookup``, ``update``, ``delete``, ``items``, ``keys``,
``clear``) raises :class:`MapError` for wrong sizes, a full map and failed
flag conditions; :meth:`Map.update_errno` / :meth:`Map.delete_errno` return
the kernel's ``0`` or negative errno instead, for helpers.  This module does
not know about addresses or programs.
"""

from __future__ import annotations

from collections.abc import Iterator

from bpfvm.errors import BpfvmError
from bpfvm.program import MapDef

ANY, NOEXIST, EXIST = 0, 1, 2  # BPF_ANY, BPF_NOEXIST, BPF_EXIST
ENOENT, E2BIG, EEXIST, EINVAL = 2, 7, 17, 22

EMPTY, USED, DELETED = 0, 1, 2
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_M64 = (1 << 64) - 1

_ERRNO_TEXT = {ENOENT: "no such key", E2BIG: "map is full", EEXIST: "key already exists",
               EINVAL: "invalid argument"}


class MapError(BpfvmError):
    """A user-space map operation failed."""


def round8(n: int) -> int:
    return (n + 7) & ~7


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits, over ``data``."""
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & _M64
    return h


class Map:
    """What array and hash maps share: definition, buffer and the Python API."""

    kind = ""
    stride: int  # bytes from one slot to the next
    value_offset: int  # offset of the value inside a slot

    def __init__(self, defn: MapDef) -> None:
        if (why := defn.problem()) is not None:
            raise MapError(f"map '{defn.name}': {why}")
        if defn.kind != self.kind:
            raise MapError(f"map '{defn.name}' is a {defn.kind} map, not {self.kind}")
        self.defn = defn
        self.name = defn.name
        self.key_size = defn.key_size
        self.value_size = defn.value_size
        self.max_entries = defn.max_entries
        self.buf = bytearray()

    @property
    def window(self) -> tuple[int, int, int]:
        """(stride, value offset, value size): where values lie in :attr:`buf`."""
        return (self.stride, self.value_offset, self.value_size)

    def __repr__(self) -> str:
        d = self.defn
        return (f"<{type(self).__name__} '{d.name}' key {d.key_size} value {d.value_size} "
                f"max {d.max_entries}, {len(self)} entries>")

    # -- for engines: raw positions and errno results ----------------------
    def find(self, key: bytes) -> int | None:
        """Byte offset in :attr:`buf` of the value for ``key``, or None."""
        raise NotImplementedError

    def update_errno(self, key: bytes, value: bytes, flags: int = ANY) -> int:
        raise NotImplementedError

    def delete_errno(self, key: bytes) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def keys(self) -> Iterator[bytes]:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    # -- Python API ------------------------------------------------------
    def _check(self, what: str, data: bytes, size: int) -> bytes:
        data = bytes(data)
        if len(data) != size:
            raise MapError(f"map '{self.name}': {what} must be {size} bytes, not {len(data)}")
        return data

    def lookup(self, key: bytes) -> bytes | None:
        """A copy of the value for ``key``, or None."""
        off = self.find(self._check("key", key, self.key_size))
        return None if off is None else bytes(self.buf[off:off + self.value_size])

    def update(self, key: bytes, value: bytes, flags: int = ANY) -> None:
        """Create or replace an entry (``flags``: ANY, NOEXIST, EXIST)."""
        key = self._check("key", key, self.key_size)
        value = self._check("value", value, self.value_size)
        err = self.update_errno(key, value, flags)
        if err:
            raise MapError(f"map '{self.name}': update failed: {_ERRNO_TEXT[-err]}")

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; False when it was absent."""
        err = self.delete_errno(self._check("key", key, self.key_size))
        if err == -EINVAL:
            raise MapError(f"map '{self.name}': elements of {self.kind} maps cannot be deleted")
        return err == 0

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key in self.keys():
            off = self.find(key)
            assert off is not None
            yield key, bytes(self.buf[off:off + self.value_size])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes | bytearray) and self.lookup(key) is not None


class ArrayMap(Map):
    kind = "array"

    def __init__(self, defn: MapDef) -> None:
        super().__init__(defn)
        self.stride = round8(self.value_size)
        self.value_offset = 0
        self.buf = bytearray(self.max_entries * self.stride)
        self.buf[:len(defn.init)] = defn.init

    def find(self, key: bytes) -> int | None:
        index = int.from_bytes(key[:4], "little")
        return index * self.stride if index < self.max_entries else None

    def update_errno(self, key: bytes, value: bytes, flags: int = ANY) -> int:
        if flags not in (ANY, NOEXIST, EXIST):
            return -EINVAL
        off = self.find(key)
        if off is None:
            return -E2BIG
        if flags == NOEXIST:
            return -EEXIST
        self.buf[off:off + self.value_size] = value
        return 0

    def delete_errno(self, key: bytes) -> int:
        return -EINVAL

    def __len__(self) -> int:
        return self.max_entries

    def keys(self) -> Iterator[bytes]:
        for i in range(self.max_entries):
            yield i.to_bytes(4, "little")

    def clear(self) -> None:
        self.buf[:] = bytes(len(self.buf))


class HashMap(Map):
    kind = "hash"

    def __init__(self, defn: MapDef) -> None:
        super().__init__(defn)
        cap = 4
        while cap < 2 * self.max_entries:
            cap *= 2
        self.capacity = cap
        self.key_offset = 8
        self.value_offset = 8 + round8(self.key_size)
        self.stride = self.value_offset + round8(self.value_size)
        self.buf = bytearray(cap * self.stride)
        self.count = 0
        self.deleted = 0

    def _probe(self, key: bytes) -> tuple[int, int]:
        """(slot holding ``key`` or -1, first reusable slot on the path or -1)."""
        buf, stride, ks, mask = self.buf, self.stride, self.key_size, self.capacity - 1
        slot = fnv1a64(key) & mask
        free = -1
        for _ in range(self.capacity):
            base = slot * stride
            state = buf[base]
            if state == EMPTY:
                return -1, (slot if free < 0 else free)
            if state == USED:
                if buf[base + 8:base + 8 + ks] == key:
                    return slot, free
            elif free < 0:
                free = slot
            slot = (slot + 1) & mask
        return -1, free

    def find(self, key: bytes) -> int | None:
        slot, _ = self._probe(key)
        return None if slot < 0 else slot * self.stride + self.value_offset

    def _put(self, slot: int, key: bytes, value: bytes) -> None:
        base = slot * self.stride
        self.buf[base] = USED
        self.buf[base + 8:base + 8 + self.key_size] = key
        voff = base + self.value_offset
        self.buf[voff:voff + self.value_size] = value

    def _rebuild(self) -> None:
        entries = list(self.items())
        self.buf[:] = bytes(len(self.buf))
        self.count = self.deleted = 0
        for key, value in entries:
            _, free = self._probe(key)
            self._put(free, key, value)
            self.count += 1

    def update_errno(self, key: bytes, value: bytes, flags: int = ANY) -> int:
        if flags not in (ANY, NOEXIST, EXIST):
            return -EINVAL
        slot, free = self._probe(key)
        if slot >= 0:
            if flags == NOEXIST:
                return -EEXIST
            voff = slot * self.stride + self.value_offset
            self.buf[voff:voff + self.value_size] = value
            return 0
        if flags == EXIST:
            return -ENOENT
        if self.count >= self.max_entries:
            return -E2BIG
        if self.buf[free * self.stride] == EMPTY and \
                (self.count + self.deleted + 1) * 4 > self.capacity * 3:
            self._rebuild()
            _, free = self._probe(key)
        if self.buf[free * self.stride] == DELETED:
            self.deleted -= 1
        self._put(free, key, value)
        self.count += 1
        return 0

    def delete_errno(self, key: bytes) -> int:
        slot, _ = self._probe(key)
        if slot < 0:
            return -ENOENT
        self.buf[slot * self.stride] = DELETED
        self.count -= 1
        self.deleted += 1
        return 0

    def __len__(self) -> int:
        return self.count

    def keys(self) -> Iterator[bytes]:
        buf, stride, ks = self.buf, self.stride, self.key_size
        for slot in range(self.capacity):
            base = slot * stride
            if buf[base] == USED:
                yield bytes(buf[base + 8:base + 8 + ks])

    def clear(self) -> None:
        self.buf[:] = bytes(len(self.buf))
        self.count = self.deleted = 0


MAP_CLASSES: dict[str, type[Map]] = {"array": ArrayMap, "hash": HashMap}


def make_map(defn: MapDef) -> Map:
    """A new, empty map for a declaration."""
    cls = MAP_CLASSES.get(defn.kind)
    if cls is None:
        raise MapError(f"map '{defn.name}': unknown map type '{defn.kind}'")
    return cls(defn)


def make_maps(defs: list[MapDef]) -> list[Map]:
    return [make_map(d) for d in defs]
