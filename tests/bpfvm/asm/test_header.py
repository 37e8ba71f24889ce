"""bpfvm.h (bpfvm.asm.header, ``bpfvm header``): generated from the hook and
helper records it is given (the CLI gives the MM core's); the structs'
offsets are checked by compiling assertions written from ``bpfvm hooks
--json`` and by reading a compiled object's BTF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpfvm.asm.btf import STRUCT, Btf
from bpfvm.asm.header import generate as generate_for
from bpfvm.cli import main
from bpfvm.cli.common import header_text
from bpfvm.hookspec import CtxField, HookSpec
from bpfvm.stdhelpers import standard_helpers
from bpfvm.toolchain import ToolchainError
from mmcore.hooks.helpers import policy_helpers
from mmcore.hooks.specs import HOOKS
from tests.bpfvm.asm.cc import build


def generate() -> str:
    """The header of the MM core's hooks and policy helpers."""
    return generate_for(HOOKS, policy_helpers())


def hooks_json(capsys) -> list[dict]:
    assert main(["hooks", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_header_has_every_hook_helper_and_libbpf_macro() -> None:
    text = generate()
    for hook in HOOKS:
        assert f"struct {hook}_ctx {{" in text
    for spec in policy_helpers():
        assert f"(*{spec.name})(" in text and f"(*bpf_{spec.name})(" in text
        assert f"= (void *){spec.id};" in text
    for word in ("#define SEC(name)", "#define __uint(name, val)", "#define __type(name, val)",
                 "BPF_MAP_TYPE_ARRAY = 2", "BPF_MAP_TYPE_HASH = 1", "typedef unsigned int __u32;",
                 "typedef signed long long __s64;", "typedef unsigned char __u8;"):
        assert word in text


def test_header_is_made_of_the_records_it_is_given() -> None:
    hook = HookSpec("probe", "A test hook.", (CtxField("a", 0, 4), CtxField("b", 8, 8, True)),
                    0, 1, "0 or 1")
    text = generate_for({"probe": hook}, standard_helpers())
    assert "struct probe_ctx {" in text and "__u8 __pad4[4];" in text
    assert "_Static_assert(sizeof(struct probe_ctx) == 16" in text
    assert "struct placement_ctx" not in text and "mm_tick" not in text
    assert text == generate_for({"probe": hook}, standard_helpers())
    assert header_text() == generate()


def test_header_command_writes_the_generated_text(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bpfvm.h"
    assert main(["header", "-o", str(out)]) == 0
    assert out.read_text() == generate()
    assert main(["header"]) == 0
    assert capsys.readouterr().out == generate()


def _asserts(hooks: list[dict], skew: int = 0) -> str:
    lines = ['#include "bpfvm.h"']
    for h in hooks:
        for f in h["fields"]:
            lines.append(f"_Static_assert(offsetof(struct {h['name']}_ctx, {f['name']}) == "
                         f"{f['offset'] + skew}, \"{h['name']}.{f['name']}\");")
            lines.append(f"_Static_assert(sizeof(((struct {h['name']}_ctx *)0)->{f['name']}) "
                         f"== {f['size']}, \"size of {h['name']}.{f['name']}\");")
    return "\n".join(lines) + "\nSEC(\"lifetime\") int p(void *c) { return 0; }\n"


def test_struct_offsets_match_hooks_json_when_compiled(tmp_path: Path, capsys) -> None:
    hooks = hooks_json(capsys)
    assert {h["name"] for h in hooks} == set(HOOKS)
    build(_asserts(hooks), tmp_path)
    with pytest.raises(ToolchainError, match="static assertion failed"):  # the check can fail
        build(_asserts(hooks, skew=1), tmp_path)


def test_struct_layouts_in_the_btf_of_a_compiled_object(tmp_path: Path, capsys) -> None:
    hooks = hooks_json(capsys)
    uses = "\n".join(f"struct {h['name']}_ctx g_{h['name']};" for h in hooks)
    obj = build(f'#include "bpfvm.h"\n{uses}\nSEC("lifetime") int p(void *c) {{ return 0; }}\n',
                tmp_path)
    from elftools.elf.elffile import ELFFile

    with open(obj, "rb") as fh:
        btf = Btf(ELFFile(fh).get_section_by_name(".BTF").data())
    structs = {t.name: t for t in btf.types[1:] if t is not None and t.kind == STRUCT}
    for h in hooks:
        st = structs[f"{h['name']}_ctx"]
        assert st.size_or_type == h["ctx_size"]
        members = {m.name: m for m in st.members}
        for f in h["fields"]:
            m = members[f["name"]]
            assert m.offset == 8 * f["offset"]
            assert btf.size_of(m.type) == f["size"]


HELPER_CALLS = """#include "bpfvm.h"
SEC("placement")
int calls(struct placement_ctx *ctx)
{
    __u64 t = bpf_ktime_get_ns() + ktime_get_ns();
    return (mm_node_free_pages(0) + bpf_mm_tick() + bpf_get_prandom_u32() + t) & 1;
}
"""


def test_helpers_compile_to_calls_of_their_ids(tmp_path: Path) -> None:
    from bpfvm.asm.elf import load_object_file

    prog = load_object_file(build(HELPER_CALLS, tmp_path))[0]
    ids = [i.imm for i in prog.insns if i.opcode == 0x85 and i.src == 0]
    helpers = policy_helpers()
    names = sorted(helpers.get(i).name for i in ids)
    assert names == sorted(["ktime_get_ns", "ktime_get_ns", "mm_node_free_pages", "mm_tick",
                            "get_prandom_u32"])
