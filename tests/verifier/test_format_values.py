"""trace_printk's r3-r5 may be left uninitialised where the format reads
fewer values: the count the verifier relies on (``format_reads``) is never
below what the implementation reads, however the format is cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bpfvm.stdhelpers import format_reads, format_trace

PIECES = st.sampled_from([b"%d", b"%%", b"%lx", b"%-5u", b"%hhd", b"%p", b"%c", b"%", b"%l",
                          b"a", b" ", b"\n", b"\0", b"%5", b"%zX"])


class Reads(tuple):
    """Arguments that count how many of them are read."""

    seen = 0

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        Reads.seen = max(Reads.seen, i + 1)
        return 0


@given(st.lists(PIECES, max_size=8))
def test_reads_what_the_implementation_reads(pieces: list[bytes]) -> None:
    fmt = b"".join(pieces)
    n = format_reads(fmt)
    for cut in range(len(fmt) + 1):  # the helper may cut the format at its size
        Reads.seen = 0
        text = format_trace(fmt[:cut].split(b"\0", 1)[0], Reads((0,) * 9))
        assert Reads.seen <= n
        if text is not None and cut == len(fmt):  # valid: exactly the count
            assert Reads.seen == n
