"""The `tinytrain` command itself: its help says what it is and how to start, `--version`, `python -m`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tinytrain", *args], capture_output=True, text=True, env=env)


def test_help_describes_the_tool_and_its_first_steps():
    r = _run("--help")
    assert r.returncode == 0, r.stderr
    assert "on-device training under 256 KB" in r.stdout
    for cmd in ("doctor", "import", "emulate", "export", "calibrate"):
        assert f"tinytrain {cmd}" in r.stdout or f"    {cmd}" in r.stdout
    assert "2 bad input" in r.stdout


def test_version_and_unknown_command():
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.startswith("tinytrain ")
    r = _run("frobnicate")
    assert r.returncode == 2 and "invalid choice: 'frobnicate'" in r.stderr and "Traceback" not in r.stderr
