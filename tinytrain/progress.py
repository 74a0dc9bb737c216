"""Live progress of the long commands (`bench`, `experiment`, `search`, `emulate`'s training steps): one rich
display on stderr with done / total, failures, elapsed time and time left. It is live only when stderr
is a terminal and the command is not asked to be quiet (`--quiet`, `--json`); otherwise nothing is drawn
and the line-per-task messages go where they always went, so logs and tests see the same text.

    with Tracker("bench rows", total=len(todo), live=live, log=say) as track:
        for outcome in executor.map(tasks):
            track.done(ok=outcome.ok, line=describe(...))
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

Log = Callable[[str], None]


def live_default(quiet: bool = False) -> bool:
    """Draw a live display: stderr is a terminal and the command is not quiet."""
    return not quiet and sys.stderr.isatty()


class Tracker:
    """Counts finished tasks. `line`s go to `log` when not live, above the bar (on stderr) when live."""

    def __init__(
        self, what: str, total: int, live: bool = False, log: Log | None = None, console: Any = None
    ) -> None:
        """`console`: a rich Console to draw on (default: stderr's); tests pass one writing to a buffer."""
        self.what, self.total, self.live = what, total, live
        self.console = console
        self.log: Log = log or (lambda m: None)
        self.finished = 0
        self.failures = 0
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Tracker:
        if self.live and self.total > 0:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failures]} failed[/red]"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=self.console if self.console is not None else Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.what, total=self.total, failures=0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def say(self, line: str) -> None:
        """A message: above the live display, or to the log."""
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            self.log(line)

    def done(self, ok: bool = True, line: str = "") -> None:
        """One task finished (a failure when not `ok`); `line` describes it."""
        self.finished += 1
        self.failures += 0 if ok else 1
        if line:
            self.say(line)
        if self._progress is not None:
            self._progress.update(self._task, advance=1, failures=self.failures)

    def hook(self) -> Callable[[int, int], None]:
        """A callback (done, total) for code that counts its own steps (e.g. emulate's training steps)."""

        def update(done: int, total: int) -> None:
            self.total = total
            self.finished = done
            if self._progress is not None:
                self._progress.update(self._task, completed=done, total=total)

        return update
