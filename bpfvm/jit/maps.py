"""Native ``map_lookup_elem``: array lookups as address arithmetic, hash probes in IR.

The map handle in r1 is compared with the handles of the program's maps (a
switch LLVM folds away when the handle is a constant, as it is after
``lddw``); anything else faults as in the interpreter.  The key is read
from r2.  The storage layouts are those documented in :mod:`bpfvm.maps`:

* array: the value of index ``i < max_entries`` is at ``i * stride``;
* hash: FNV-1a over the key bytes picks the home slot, linear probing skips
  tombstones and stops at an empty slot or after ``capacity`` probes; a
  slot matches when its state byte is 1 (used) and its key bytes equal the
  key.

Updates and deletes are not lowered here: they go through the Python map
API by callback (they may rebuild the table).
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from bpfvm.jit.abi import F_NOT_MAP
from bpfvm.jit.ir import I1, I8, I64, PTR, Lowering, MapGeom
from bpfvm.maps import FNV_OFFSET, FNV_PRIME, USED

UNROLL_LIMIT = 64  # keys up to this many bytes are hashed and compared without a loop
LOOKUP_TYPE = ir.FunctionType(I64, [I64, I64])


def lookup_elem(lw: Lowering, pc: int) -> ir.Value:
    """r0 of ``map_lookup_elem(r1 = map handle, r2 = key pointer)``."""
    b = lw.b
    handle, key = lw.get(1), lw.get(2)
    bad, done = lw.new_block(f"lookup_bad{pc}"), lw.new_block(f"lookup_done{pc}")
    switch = b.switch(b.sub(handle, lw.envi), bad)
    results = []
    for i, geom in enumerate(lw.layout.maps):
        block = lw.new_block(f"lookup{pc}_map{i}")
        switch.add_case(I64(lw.handle_offset(i)), block)
        b.position_at_end(block)
        if lw.checked:
            from bpfvm.jit.checked import check_access

            check_access(lw, pc, key, geom.key_size, False)
        if geom.kind == "array":
            value = _array_lookup(lw, i, geom, key)
        else:
            value = b.call(_hash_function(lw, i, geom), [lw.map_storage(i), key])
        results.append((value, b.block))
        b.branch(done)
    b.position_at_end(bad)
    lw.fault(pc, F_NOT_MAP, handle)
    b.position_at_end(done)
    if not results:
        return I64(0)
    phi = b.phi(I64)
    for value, block in results:
        phi.add_incoming(value, block)
    return phi


def _array_lookup(lw: Lowering, index: int, geom: MapGeom, key: ir.Value) -> ir.Value:
    b = lw.b
    i = b.zext(b.load(lw.pointer(key), typ=ir.IntType(32), align=1), I64)
    addr = b.add(lw.map_storage(index), b.mul(i, I64(geom.stride)))
    return b.select(b.icmp_unsigned("<", i, I64(geom.max_entries)), addr, I64(0))


def _hash_function(lw: Lowering, index: int, geom: MapGeom) -> ir.Function:
    """``i64 lookup(i64 storage, i64 key)``: the value's address or 0 (built once)."""
    name = f"map{index}_lookup"
    if name in lw.module.globals:
        return lw.module.globals[name]
    fn = ir.Function(lw.module, LOOKUP_TYPE, name=name)
    fn.linkage = "internal"
    storage, key = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    key_ptr = b.inttoptr(key, PTR)
    mask = geom.capacity - 1
    home = b.and_(_fnv(fn, b, key_ptr, geom.key_size), I64(mask))
    entry = b.block
    loop, used, found, missing, nxt = (fn.append_basic_block(n) for n in
                                       ("probe", "used", "found", "missing", "next"))
    b.branch(loop)
    b.position_at_end(loop)
    slot = b.phi(I64)
    count = b.phi(I64)
    base = b.add(storage, b.mul(slot, I64(geom.stride)))
    state = b.load(b.inttoptr(base, PTR), typ=I8)
    sw = b.switch(state, nxt)
    sw.add_case(I8(0), missing)
    sw.add_case(I8(USED), used)
    b.position_at_end(used)
    same = _equal(fn, b, key_ptr, b.inttoptr(b.add(base, I64(8)), PTR), geom.key_size)
    b.cbranch(same, found, nxt)
    b.position_at_end(found)
    b.ret(b.add(base, I64(geom.value_offset)))
    b.position_at_end(nxt)
    next_slot = b.and_(b.add(slot, I64(1)), I64(mask))
    next_count = b.add(count, I64(1))
    b.cbranch(b.icmp_unsigned("<", next_count, I64(geom.capacity)), loop, missing)
    b.position_at_end(missing)
    b.ret(I64(0))
    slot.add_incoming(home, entry)
    slot.add_incoming(next_slot, nxt)
    count.add_incoming(I64(0), entry)
    count.add_incoming(next_count, nxt)
    return fn


def _byte_loop(fn: ir.Function, b: ir.IRBuilder, size: int, init: ir.Value,
               body: Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]) -> ir.Value:
    """Fold ``acc = body(b, acc, i)`` over ``i`` in ``range(size)`` with an IR loop."""
    entry = b.block
    loop, out = fn.append_basic_block("bytes"), fn.append_basic_block("bytes_done")
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(I64)
    acc = b.phi(init.type)
    new = body(b, acc, i)
    nxt = b.add(i, I64(1))
    b.cbranch(b.icmp_unsigned("<", nxt, I64(size)), loop, out)
    i.add_incoming(I64(0), entry)
    i.add_incoming(nxt, loop)
    acc.add_incoming(init, entry)
    acc.add_incoming(new, loop)
    b.position_at_end(out)
    return new


def _fnv(fn: ir.Function, b: ir.IRBuilder, key: ir.Value, size: int) -> ir.Value:
    """FNV-1a (64 bits) of ``size`` bytes at ``key``."""
    def step(bb: ir.IRBuilder, h: ir.Value, i: ir.Value) -> ir.Value:
        byte = bb.load(bb.gep(key, [i], source_etype=I8), typ=I8)
        return bb.mul(bb.xor(h, bb.zext(byte, I64)), I64(FNV_PRIME))

    if size > UNROLL_LIMIT:
        return _byte_loop(fn, b, size, I64(FNV_OFFSET), step)
    h: ir.Value = I64(FNV_OFFSET)
    for i in range(size):
        h = step(b, h, I64(i))
    return h


def _equal(fn: ir.Function, b: ir.IRBuilder, x: ir.Value, y: ir.Value, size: int) -> ir.Value:
    """True when ``size`` bytes at ``x`` and ``y`` are equal."""
    if size > UNROLL_LIMIT:
        def step(bb: ir.IRBuilder, acc: ir.Value, i: ir.Value) -> ir.Value:
            u = bb.load(bb.gep(x, [i], source_etype=I8), typ=I8)
            v = bb.load(bb.gep(y, [i], source_etype=I8), typ=I8)
            return bb.or_(acc, bb.zext(bb.xor(u, v), I64))
        return b.icmp_unsigned("==", _byte_loop(fn, b, size, I64(0), step), I64(0))
    diff: ir.Value = I64(0)
    off = 0
    while off < size:
        chunk = next(c for c in (8, 4, 2, 1) if c <= size - off)
        ty = ir.IntType(chunk * 8)
        u = b.load(b.gep(x, [I64(off)], source_etype=I8), typ=ty, align=1)
        v = b.load(b.gep(y, [I64(off)], source_etype=I8), typ=ty, align=1)
        diff = b.or_(diff, b.zext(b.xor(u, v), I64) if chunk < 8 else b.xor(u, v))
        off += chunk
    return b.icmp_unsigned("==", diff, I64(0)) if size else I1(1)
