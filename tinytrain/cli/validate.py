"""Validate before work: numeric options range-checked and output paths checked writable before anything is
loaded, compiled or run. Each check raises a TinytrainError naming the option (the CLI prints one line and
exits 2), so a bad `--report` or `--dump-params` never costs the user a whole run.

Output checks create nothing that stays: a missing output directory is created, probed with a temporary
file, and removed again (with the parents the probe created)."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from tinytrain import TinytrainError

#: Input resolutions the CLI accepts (the planner and the board then decide whether it fits).
MIN_RESOLUTION, MAX_RESOLUTION = 8, 1024


def int_at_least(option: str, value: int | None, low: int) -> None:
    if value is not None and value < low:
        raise TinytrainError(f"{option} must be at least {low}, not {value}")


def positive_finite(option: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise TinytrainError(f"{option} must be a finite number > 0, not {value:g}")


def nonnegative_finite(option: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise TinytrainError(f"{option} must be a finite number >= 0, not {value:g}")


def in_unit_interval(option: str, value: float | None) -> None:
    """0 <= value < 1 (momentum)."""
    if value is not None and not (math.isfinite(value) and 0 <= value < 1):
        raise TinytrainError(f"{option} must be in [0, 1), not {value:g}")


def resolution(option: str, value: int | None) -> None:
    if value is not None and not MIN_RESOLUTION <= value <= MAX_RESOLUTION:
        raise TinytrainError(f"{option} must be between {MIN_RESOLUTION} and {MAX_RESOLUTION}, not {value}")


def _probe(directory: Path) -> None:
    fd, name = tempfile.mkstemp(prefix=".tinytrain-probe-", dir=directory)
    os.close(fd)
    os.unlink(name)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def writable_dir(option: str, path: str | Path | None) -> None:
    """`path` is, or can be created as, a directory we can write files in."""
    if path is None:
        return
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise TinytrainError(f"{option} {d}: exists and is not a directory")
    created: list[Path] = []
    try:
        missing = [p for p in [d, *d.parents] if not p.exists()]
        for p in reversed(missing):
            p.mkdir()
            created.append(p)
        _probe(d)
    except OSError as exc:
        raise TinytrainError(
            f"{option} {d}: cannot write there ({_reason(exc)}); choose a writable directory"
        ) from None
    finally:
        for p in reversed(created):
            try:
                p.rmdir()
            except OSError:
                pass


def writable_file(option: str, path: str | Path | None) -> None:
    """`path` can be written as a file: its directory exists and is writable, and it is not a directory."""
    if path is None:
        return
    f = Path(path)
    if f.is_dir():
        raise TinytrainError(f"{option} {f}: is a directory; give a file name")
    parent = f.parent
    if not parent.is_dir():
        raise TinytrainError(
            f"{option} {f}: the directory {parent} does not exist; create it first or choose another path"
        )
    try:
        _probe(parent)
    except OSError as exc:
        raise TinytrainError(f"{option} {f}: cannot write in {parent} ({_reason(exc)})") from None
    if f.exists() and not os.access(f, os.W_OK):
        raise TinytrainError(f"{option} {f}: exists and is not writable")


def readable_file(option: str, path: str | Path | None) -> None:
    if path is None:
        return
    f = Path(path)
    if not f.exists():
        raise TinytrainError(f"{option} {f}: no such file")
    if f.is_dir():
        raise TinytrainError(f"{option} {f}: is a directory, not a file")
    if not os.access(f, os.R_OK):
        raise TinytrainError(f"{option} {f}: not readable")
