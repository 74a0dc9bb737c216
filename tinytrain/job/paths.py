"""Where a job writes: under the current directory unless the user says otherwise (never into the
installation). From the repository root that is the checkout's build/ and results/."""

from __future__ import annotations

from pathlib import Path

from tinytrain import output_dir

#: The main job's report (`tinytrain emulate --defaults` without overrides), relative to the current
#: directory: run from the repository root, it is the committed results/main-job/.
MAIN_JOB_REPORT = Path("results") / "main-job"


def build_root() -> Path:
    """./build/emulate: one directory per job key."""
    return output_dir("build", "emulate")


def runs_dir() -> Path:
    """./results/runs: one JSON record per run."""
    return output_dir("results", "runs")


def report_dir(is_main_job: bool, key: str, task: str | None = None) -> Path:
    """The report of a `--defaults` run: the main job's own (./results/main-job; a task's:
    ./results/<task>-job) only for that default job itself (no option changed); a variant writes
    ./results/reports/<job key> instead, so a quick `--defaults --steps 2` never overwrites the committed
    report."""
    if is_main_job:
        return MAIN_JOB_REPORT if task is None else Path("results") / f"{task}-job"
    return output_dir("results", "reports", key)
