"""Tasks: named jobs with their defaults (`tinytrain emulate --defaults --task NAME`). A registry
name -> job defaults (tinytrain.job.JobConfig fields, command-line names)."""

from __future__ import annotations

from typing import Any

from tinytrain.tasks import keyboard

TASKS: dict[str, dict[str, Any]] = {keyboard.NAME: keyboard.DEFAULTS}
