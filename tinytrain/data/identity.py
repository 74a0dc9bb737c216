"""A dataset's identity for build and cache directory names: a shipped set is its name; a path is its
folder or file name plus a hash of the resolved path and of every file's bytes, so two different folders
(or one folder whose files changed) never share a build.

The content hash is memoized per (path, every file's size and modification time): hashing a folder of
images once per run, not once per `JobConfig.key()` call.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tinytrain.data.errors import DataError

_BUILTIN = ("faces", "digits", "sensor")  # tinytrain.data's DATASETS + SCENARIOS
_MEMO: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


def is_path_dataset(spec: str | Path) -> bool:
    """True for the user's data (a path), False for a shipped set (`faces`, `digits`)."""
    return str(spec) not in _BUILTIN


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def content_hash(spec: str | Path) -> str:
    """sha256 (hex) over the relative names and bytes of every file under `spec` (a file: its bytes)."""
    path = Path(spec)
    if not path.exists():
        raise DataError(
            f"unknown dataset {str(spec)!r}: choose one of {', '.join(_BUILTIN)} or give an existing image "
            "folder, .npz, .csv or .ts file"
        )
    files = _files(path)
    try:
        sig = tuple(
            (f.relative_to(path).as_posix() if f != path else "", st.st_size, st.st_mtime_ns)
            for f, st in ((f, f.stat()) for f in files)
        )
    except OSError as exc:
        raise DataError(f"{path}: cannot read {exc.filename}: {exc.strerror}") from None
    memo_key = (str(path.resolve()), sig)
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    h = hashlib.sha256()
    for f, (rel, _, _) in zip(files, sig, strict=True):
        h.update(rel.encode() + b"\0")
        try:
            with f.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError as exc:
            raise DataError(f"{f}: cannot read ({exc.strerror})") from None
        h.update(b"\0")
    _MEMO[memo_key] = h.hexdigest()
    return _MEMO[memo_key]


def dataset_identity(spec: str | Path) -> str:
    """`faces` / `digits`, or `<name>-<10 hex digits of sha256(resolved path, content hash)>` for a path."""
    if not is_path_dataset(spec):
        return str(spec)
    path = Path(spec)
    digest = content_hash(path)
    both = hashlib.sha256(f"{path.resolve()}\0{digest}".encode()).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", path.name or path.resolve().name)
    return f"{name}-{both}"
