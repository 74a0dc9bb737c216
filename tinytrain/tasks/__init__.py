"""Tasks: named job defaults (`tinytrain emulate --defaults --task NAME`), as data.

`TASKS` maps a task name to the flat `JobConfig` defaults (command-line names) that replace the embedded
default job's (`tinytrain.job.config.DEFAULTS`); options given beside `--task` still override them. One
module per task holds its defaults and says where each choice was measured; registering a task is one line.
"""

from __future__ import annotations

from typing import Any

from tinytrain import TinytrainError
from tinytrain.tasks import keyboard, sensor

TASKS: dict[str, dict[str, Any]] = {
    "sensor": sensor.DEFAULTS,
    "keyboard": keyboard.DEFAULTS,
}


def task_defaults(name: str) -> dict[str, Any]:
    """The flat job defaults of task `name` (a copy); TinytrainError naming the known tasks otherwise."""
    if name not in TASKS:
        raise TinytrainError(f"unknown task {name!r}: choose one of {', '.join(sorted(TASKS))}")
    return dict(TASKS[name])
