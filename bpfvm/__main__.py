"""``python -m bpfvm``."""

import sys

try:
    from bpfvm.cli import entry
except KeyboardInterrupt:  # Ctrl-C before the command line is read
    print("bpfvm: interrupted", file=sys.stderr)
    sys.exit(130)

entry()
