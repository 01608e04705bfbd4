"""Run a CuTe DSL check in a child process: CUTE_DSL_ARCH must be set before cutlass loads, and the DSL compiles from
source, so the child runs a file. The source defines `result` (a dict) and a `@cute.jit` function `check()` that
fills it; the child calls check() and prints result as JSON. No GPU needed (skips where cutlass is missing)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cute_child(source, tmp_path, name="child.py"):
    """The `result` dict the check filled."""
    pytest.importorskip("cutlass")
    script = tmp_path / name
    script.write_text("import json\n" + source + "\ncheck()\nprint(json.dumps(result))\n")
    env = dict(os.environ, CUTE_DSL_ARCH="sm_90a",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
