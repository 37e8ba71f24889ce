"""Run a benchmark module's ``measure(*args)`` on another checkout, in a
fresh process: the benchmark module from this directory, the packages it
measures from ``tree``.  The result is what ``measure`` returns, through
JSON; a failure ends the benchmark with the child's last line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def measure_in(tree: Path, module: str, *args: Any) -> Any:
    code = (f"import sys; sys.path.insert(0, {str(tree)!r}); "
            f"sys.path.insert(0, {str(HERE)!r}); import json, {module}; "
            f"print(json.dumps({module}.measure(*{args!r})))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tree, check=False)
    if res.returncode:
        sys.exit(f"{tree}: {res.stderr.strip().splitlines()[-1] if res.stderr else 'failed'}")
    return json.loads(res.stdout.strip().splitlines()[-1])
