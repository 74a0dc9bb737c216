"""Atomic output files: write to a temporary name beside the target, flush it to disk, rename it over the
target (`os.replace`, atomic on POSIX). A reader, or a run interrupted at any point (SIGINT, SIGTERM,
SIGKILL, power loss after the rename reached the disk), sees the old file or the new one, never half of one.

    from tinytrain.atomic import write_text, write_bytes, atomic_path, atomic_open
    write_text(path, text)
    with atomic_open(path, "w", newline="") as f:   # csv.writer(f), json.dump(..., f)
        ...
    with atomic_path(path) as tmp:                  # for writers that want a name: fig.savefig(tmp)
        fig.savefig(tmp, format="png")

On an exception inside the block the temporary file is removed and the target is untouched. Temporary names
start with `.` and end with `.tmp` (`.<name>.<random>.tmp`), so a leftover after SIGKILL is never mistaken
for an output; `leftover_temporaries(dir)` lists them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tmp_for(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without an exception, the file written
    there is synced and renamed to `path`."""
    target = Path(path)
    if mkdir:
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_for(target)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """`open(path, mode)` for writing ("w" or "wb"), atomically (see the module doc)."""
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        f.flush()


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def leftover_temporaries(directory: str | Path) -> list[Path]:
    """Temporary files an interrupted atomic write left in `directory` (recursively)."""
    return sorted(p for p in Path(directory).rglob(f".*{TMP_SUFFIX}") if p.is_file())


def savefig(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """`fig.savefig(path, **kwargs)` (matplotlib), atomically; the format comes from the suffix."""
    fmt = kwargs.pop("format", None) or Path(path).suffix.lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **kwargs)
    return Path(path)
