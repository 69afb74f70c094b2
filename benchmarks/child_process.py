"""One benchmark step in a fresh Python process, so its peak RSS (``ru_maxrss``) is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_child(script: str, *args: str) -> dict:
    """Run ``script --child ARGS`` and return the JSON object its last stdout line prints; a
    failing child ends the benchmark with its stderr."""
    cmd = [sys.executable, os.path.abspath(script), "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"child {' '.join(args)} failed (rc {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
