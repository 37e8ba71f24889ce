"""``python -m bpfvm.cli``."""

import sys

from bpfvm.cli import main

sys.exit(main())
