"""``python -m bpfvm.cli``: the same entry as ``python -m bpfvm``."""

from bpfvm.cli import entry

entry()
