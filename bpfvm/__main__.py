"""``python -m bpfvm``."""

import sys

from bpfvm.cli import main

sys.exit(main())
