"""Task functions of the executor tests (imported by name on the workers)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def square(x: int) -> dict[str, Any]:
    return {"x": x, "square": x * x, "pid": os.getpid()}


def fail_once(marker: str) -> dict[str, Any]:
    """Raises the first time (leaving `marker`), succeeds the second."""
    m = Path(marker)
    if not m.exists():
        m.write_text("1")
        raise RuntimeError("transient failure")
    return {"second": True}


def always_fail() -> dict[str, Any]:
    raise ValueError("bad row")


def die_once(marker: str) -> dict[str, Any]:
    """Kills its own worker process the first time (leaving `marker`), succeeds the second."""
    m = Path(marker)
    if not m.exists():
        m.write_text("1")
        os._exit(1)
    return {"survived": True}


def always_die() -> dict[str, Any]:
    os._exit(3)


def sleep(seconds: float) -> dict[str, Any]:
    time.sleep(seconds)
    return {"slept": seconds}
