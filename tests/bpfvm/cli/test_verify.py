"""``bpfvm verify``: exit codes, the rejection text, logs and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpfvm.cli import main

BAD = "r0 = 0\nr1 = *(u64 *)(r10 - 8)\nexit\n"
GOOD = "r0 = *(u32 *)(r1 + 4)\nexit\n"
LOOP = "r0 = 0\nr1 = 0\nloop:\nr1 += 1\nif r1 < 100 goto loop\nexit\n"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = write(tmp_path, "good.s", GOOD)
    assert main(["verify", prog, "--ctx-size", "8"]) == 0
    assert "good.s: accepted for a buffer of 8 bytes" in capsys.readouterr().out


def test_rejected_shows_line_insn_and_state(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    prog = write(tmp_path, "bad.s", BAD)
    assert main(["verify", prog]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{prog}:2: pc 1: read of uninitialised stack at fp-8 size 8"
    assert out[1].strip() == "r1 = *(u64 *)(r10 - 8)"
    assert out[2].strip() == "r10=ptr_to_stack(off=0)"


def test_out_of_bounds_with_small_buffer(tmp_path: Path) -> None:
    prog = write(tmp_path, "good.s", GOOD)
    assert main(["verify", prog, "--ctx-size", "7"]) == 1


def test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = write(tmp_path, "bad.s", BAD)
    assert main(["verify", prog, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["accepted"] is False
    assert data["diagnostics"][0]["line"] == 2 and data["diagnostics"][0]["pc"] == 1


@pytest.mark.parametrize("level,needle", [(1, "if r1 < 100 goto -2: both ways"),
                                          (2, "pc 2: r1 += 1    ; r0=0 r1=scalar(")])
def test_log_levels(tmp_path: Path, capsys: pytest.CaptureFixture[str], level: int,
                    needle: str) -> None:
    prog = write(tmp_path, "loop.s", LOOP)
    assert main(["verify", prog, "--log-level", str(level)]) == 0
    assert needle in capsys.readouterr().out


STRAIGHT = ("r1 = 5\nr2 = r1\nr2 += 3\n*(u64 *)(r10 - 8) = r2\nif r2 > 7 goto +1\n"
            "r0 = 1\nr0 = 0\nexit\n")


def _state_lines(out: str) -> dict[int, str]:
    """pc -> the state part of each level-2 log line."""
    states = {}
    for line in out.splitlines():
        if "    ; " in line:
            head, state = line.split("    ; ", 1)
            states[int(head.split(": pc ")[1].split(":")[0])] = state
    return states


def test_log_level_2_shows_the_state_after_each_instruction(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = write(tmp_path, "straight.s", STRAIGHT)
    assert main(["verify", prog, "--log-level", "2"]) == 0
    out = capsys.readouterr().out
    states = _state_lines(out)
    assert states[0].startswith("r1=5 ")  # after r1 = 5 (r1 was the buffer pointer before)
    assert "r2=0" in states[0] and "r2=5" in states[1]  # r2 = r1 copies the 5
    assert "r2=8" in states[2]
    assert "fp-8" in states[3] and "fp-8" not in states[2]  # the store is in the state after it
    assert states[4].startswith("-> pc 6: ")  # a jump shows each feasible edge
    assert 5 not in states  # r0 = 1 is never reached: r2 > 7 always holds
    assert "r0=0" in states[6] and "r0=0" in states[7]
    assert "if r2 > 7 goto +1: always taken" in out
    assert "processed 7 insns" in out


def test_log_level_2_branch_edges_narrow(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    prog = write(tmp_path, "branch.s", "r0 = *(u32 *)(r1 + 0)\nif r0 > 9 goto +1\n"
                 "r0 = 1\nexit\n")
    assert main(["verify", prog, "--ctx-size", "8", "--log-level", "2"]) == 0
    jump = _state_lines(capsys.readouterr().out)[1]
    fall, taken = jump.split(" | ")
    assert fall.startswith("-> pc 2: ") and "umax=9" in fall
    assert taken.startswith("-> pc 3: ") and "umin=10" in taken


@pytest.mark.parametrize("args,message", [
    (["--hook", "no-such-hook"], "unknown hook 'no-such-hook'"),
    (["--ctx-size", "-1"], "--ctx-size: expected a size such as 512MiB"),
    (["--object", "region"], "--object: expected NAME=SIZE"),
])
def test_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                   message: str) -> None:
    prog = write(tmp_path, "good.s", GOOD)
    assert main(["verify", prog, *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "/nonexistent/x.s"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_hook_from_directive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmcore.hooks.specs import HOOKS

    name = next(n for n, h in HOOKS.items() if not h.objects and h.ret_min <= 0 <= h.ret_max)
    prog = write(tmp_path, "hooked.s", f".hook {name}\nr0 = 0\nexit\n")
    assert main(["verify", prog]) == 0
    assert f"accepted for hook '{name}'" in capsys.readouterr().out


# ---- .object: the sizes of the objects a hook points at --------------------------------
PT_FILES = ("hashed_pt.s", "learned_pt.s", "cuckoo_pt.s", "cuckoo_unclustered_pt.s")


@pytest.mark.parametrize("name", PT_FILES)
def test_page_table_programs_verify_as_written(name: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import PROGRAMS

    assert main(["verify", str(PROGRAMS / name)]) == 0
    out = capsys.readouterr().out
    for hook in ("pt_lookup", "pt_map", "pt_unmap"):
        assert f"[{hook}]: accepted for hook '{hook}'" in out


@pytest.mark.parametrize("name", PT_FILES)
def test_declared_region_is_the_size_constant(name: str) -> None:
    """The .object region a shipped page-table program declares is the
    region size its leading constant holds (the MM core re-sizes both)."""
    from bpfvm.load import read_programs
    from mmcore.hooks.helpers import policy_helpers
    from mmcore.hooks.specs import HOOKS
    from mmcore.pagetables.loading import region_size_of
    from tests.conftest import PROGRAMS

    programs = read_programs(PROGRAMS / name, policy_helpers(), hooks=HOOKS)
    assert len(programs) == 3
    for prog in programs:
        assert prog.objects == {"region": region_size_of(prog)}


def test_object_flag_overrides_the_directive(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # reads 8 bytes at region + 4088: in bounds for 4 KiB, not for 4 KiB - 8
    text = (".hook pt_lookup\n.object region 4KiB\nr1 = *(u64 *)(r1 + 0)\n"
            "r0 = *(u64 *)(r1 + 4088)\nr0 = 0\nexit\n")
    prog = write(tmp_path, "p.s", text)
    assert main(["verify", prog]) == 0
    assert main(["verify", prog, "--object", "region=4088"]) == 1
    assert "region is 4088 bytes" in capsys.readouterr().out


def test_objects_survive_the_object_file(tmp_path: Path) -> None:
    from bpfvm.load import read_program
    from bpfvm.program import Program

    prog = write(tmp_path, "p.s", ".hook pt_lookup\n.object region 2MiB\nr0 = 0\nexit\n")
    out = tmp_path / "p.json"
    assert main(["asm", prog, "-o", str(out)]) == 0
    assert json.loads(out.read_text())["objects"] == {"region": 2 << 20}
    assert read_program(out, None).objects == {"region": 2 << 20}
    # programs without objects write no key: older readers still read them
    assert "objects" not in Program.load_bytes(bytes(8) + b"\x95" + bytes(7)).to_json()


def test_log_ends_with_the_insn_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = write(tmp_path, "loop.s", LOOP)
    assert main(["verify", prog, "--log-level", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    processed = [line for line in out if line.startswith("processed ")]
    assert len(processed) == 1
    assert processed[0].startswith("processed ") and " insns (limit " in processed[0]
    assert "total_states" in processed[0] and "at most" in processed[0]
    assert main(["verify", prog]) == 0
    assert not any(line.startswith("processed ") for line in capsys.readouterr().out.splitlines())
