"""Where a job writes: build directories, run records, the main job's report."""

from __future__ import annotations

from pathlib import Path

from tinytrain import REPO_ROOT, RESULTS_DIR

#: Where `tinytrain emulate --defaults` writes its report.
MAIN_JOB_REPORT = RESULTS_DIR / "main-job"


def build_root() -> Path:
    """build/emulate: one directory per job key."""
    return REPO_ROOT / "build" / "emulate"


def runs_dir() -> Path:
    """results/runs: one JSON record per run."""
    return RESULTS_DIR / "runs"
