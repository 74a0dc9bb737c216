"""Time series: a long-format CSV and the `.ts` files of the UCR/UEA archive, to recordings `[T, C]` float.

CSV (read with pandas): columns `sample`, `label`, optional `split` (`train` / `test`), then one column per
channel; one row per time step; the rows of a sample are consecutive, its label constant. Line numbers in
errors are the file's (the header is line 1).

`.ts` (UCR/UEA, parsed here): `#` comments, `@` header lines up to `@data`, then one case per line:
`dim1 values : dim2 values : ... : label`, values comma-separated (`?` = missing, an error here). A file named
`*_TRAIN.ts` with a `*_TEST.ts` beside it brings its test set.

Windowing (`window`, `stride`): every recording is cut into windows of `window` steps every `stride` steps
(default stride = window; a tail shorter than a window is dropped). Without a window all recordings must have
the same length. Windows of one recording always stay in the same split (no leakage between train and test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinytrain.data.errors import DataError

RESERVED = ("sample", "label", "split")


@dataclass
class Recordings:
    """Recordings read from a file, before windowing, normalization and quantization."""

    source: Path
    series: list[np.ndarray]  # float64 [T_i, C]
    labels: list[str]
    ids: list[str]  # sample id
    lines: list[int]  # where each recording starts (1-based file line)
    channels: list[str]
    split: list[str] = field(default_factory=list)  # "train" / "test" per recording, or empty
    test: Recordings | None = None  # a separate test file (.ts)


def sort_labels(labels: set[str]) -> list[str]:
    """Class order: numerically when every label is an integer (`2` before `10`), else as strings."""
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


def _line(i: int) -> int:
    return i + 2  # row index -> file line (header = line 1)


def read_csv(path: Path) -> Recordings:
    import pandas as pd

    try:
        df = pd.read_csv(path, skip_blank_lines=False, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable CSV ({msg})") from exc
    if not isinstance(df.index, pd.RangeIndex):  # pandas took the first cells as an index: too many fields
        raise DataError(
            f"{path}: line 2 has more fields than the header's {len(df.columns)} columns; every row needs "
            "one cell per column"
        )
    cols = [str(c).strip() for c in df.columns]
    df.columns = cols
    for need in ("sample", "label"):
        if need not in cols:
            raise DataError(f"{path}: missing column {need!r} (columns: {', '.join(cols)}); see docs/data.md")
    channels = [c for c in cols if c not in RESERVED]
    if not channels:
        raise DataError(f"{path}: no channel columns besides {', '.join(c for c in RESERVED if c in cols)}")
    dup = [c for c in cols if cols.count(c) > 1]
    if dup:
        raise DataError(f"{path}: column {dup[0]!r} appears twice")
    blank = (df.apply(lambda col: col.str.strip()) == "").all(axis=1).to_numpy()
    df = df[~blank]
    rows = df.index.to_numpy()  # original row numbers (blank lines dropped)
    if len(df) == 0:
        raise DataError(f"{path}: no data rows")
    values = np.empty((len(df), len(channels)), np.float64)
    for j, c in enumerate(channels):
        col = df[c].str.strip()
        num = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(num)
        if bad.any():
            k = int(np.argmax(bad))
            what = "empty" if col.iloc[k] == "" else f"{col.iloc[k]!r} is not a finite number"
            raise DataError(
                f"{path}: line {_line(rows[k])}, column {c!r}: {what}; every channel value must be a number"
            )
        values[:, j] = num
    sample = df["sample"].str.strip().to_numpy()
    label = df["label"].str.strip().to_numpy()
    split = df["split"].str.strip().str.lower().to_numpy() if "split" in cols else None
    for name, arr in (("sample", sample), ("label", label)):
        empty = arr == ""
        if empty.any():
            raise DataError(f"{path}: line {_line(rows[int(np.argmax(empty))])}: empty {name!r}")
    starts = np.flatnonzero(np.r_[True, sample[1:] != sample[:-1]])
    ends = np.r_[starts[1:], len(sample)]
    seen: dict[str, int] = {}
    rec = Recordings(path, [], [], [], [], channels)
    for s, e in zip(starts, ends, strict=True):
        sid = str(sample[s])
        if sid in seen:
            raise DataError(
                f"{path}: line {_line(rows[s])}: rows of sample {sid!r} are not consecutive (it also starts "
                f"on line {seen[sid]}); sort the file by sample"
            )
        seen[sid] = _line(rows[s])
        diff = np.flatnonzero(label[s:e] != label[s])
        if diff.size:
            raise DataError(
                f"{path}: line {_line(rows[s + diff[0]])}: sample {sid!r} changes label from {label[s]!r} to "
                f"{label[s + diff[0]]!r}; one label per sample"
            )
        if split is not None:
            part = split[s:e]
            wrong = np.flatnonzero((part != split[s]) | ~np.isin(part, ["train", "test"]))
            if wrong.size:
                raise DataError(
                    f"{path}: line {_line(rows[s + wrong[0]])}: split must be 'train' or 'test' and constant "
                    f"within sample {sid!r}, got {part[wrong[0]]!r}"
                )
            rec.split.append(str(split[s]))
        rec.series.append(values[s:e])
        rec.labels.append(str(label[s]))
        rec.ids.append(sid)
        rec.lines.append(_line(rows[s]))
    return rec


def read_ts(path: Path, _pair: bool = True) -> Recordings:
    try:
        if path.suffix == ".gz":
            import gzip

            text = gzip.decompress(path.read_bytes()).decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"{path}: unreadable .ts file ({exc})") from exc
    header: dict[str, str] = {}
    rec = Recordings(path, [], [], [], [], [])
    in_data = False
    dims: int | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(
                    f"{path}: line {lineno}: expected an @ header line or @data, got {line[:40]!r}"
                )
            key, _, val = line[1:].partition(" ")
            header[key.lower()] = val.strip()
            if key.lower() == "data":
                in_data = True
                if header.get("classlabel", "false").split()[:1] != ["true"]:
                    raise DataError(f"{path}: @classLabel is not true; a classification file needs labels")
                if header.get("timestamps", "false").lower() == "true":
                    raise DataError(f"{path}: @timeStamps true is not supported; export plain values")
            continue
        parts = line.split(":")
        if len(parts) < 2:
            raise DataError(f"{path}: line {lineno}: expected 'values : ... : label'")
        label, dim_text = parts[-1].strip(), parts[:-1]
        if dims is None:
            dims = len(dim_text)
        elif len(dim_text) != dims:
            raise DataError(f"{path}: line {lineno}: {len(dim_text)} dimensions, earlier cases have {dims}")
        chans = []
        for d, s in enumerate(dim_text):
            try:
                v = np.asarray([float(t) for t in s.split(",")], np.float64)
            except ValueError as exc:
                raise DataError(
                    f"{path}: line {lineno}, dimension {d + 1}: not a number ({exc}); missing values ('?') "
                    "are not supported"
                ) from exc
            if not np.isfinite(v).all():
                raise DataError(f"{path}: line {lineno}, dimension {d + 1}: NaN or inf")
            chans.append(v)
        lengths = {len(v) for v in chans}
        if len(lengths) != 1:
            raise DataError(f"{path}: line {lineno}: dimensions of different lengths {sorted(lengths)}")
        rec.series.append(np.stack(chans, axis=1))
        rec.labels.append(label)
        rec.ids.append(f"case {len(rec.ids) + 1}")
        rec.lines.append(lineno)
    if not in_data or not rec.series:
        raise DataError(f"{path}: no @data section with cases")
    rec.channels = [f"dim{d + 1}" for d in range(dims or 0)]
    if _pair and path.name.upper().endswith("_TRAIN.TS"):
        sibling = path.with_name(path.name[: -len("_TRAIN.ts")] + "_TEST" + path.suffix)
        if sibling.exists():
            rec.test = read_ts(sibling, _pair=False)
            if rec.test.channels != rec.channels:
                raise DataError(
                    f"{sibling}: {len(rec.test.channels)} dimensions, {path} has {len(rec.channels)}"
                )
    return rec


def windows(
    rec: Recordings, idx: np.ndarray, window: int | None, stride: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Recordings `idx` -> float [N, L, C] windows and the recording index of each window."""
    if window is None:
        if len(idx) == 0:
            return np.zeros((0, 0, len(rec.channels))), np.zeros(0, np.int64)
        return np.stack([rec.series[i] for i in idx]), np.asarray(idx, np.int64)
    step = stride if stride is not None else window
    out, owner = [], []
    for i in idx:
        s = rec.series[i]
        for start in range(0, len(s) - window + 1, step):
            out.append(s[start : start + window])
            owner.append(i)
    if not out:
        return np.zeros((0, window, len(rec.channels))), np.zeros(0, np.int64)
    return np.stack(out), np.asarray(owner, np.int64)


def check_equal_lengths(parts: list[Recordings]) -> None:
    """Without a window every recording (train and test files alike) has the most common length."""
    lengths = [len(v) for r in parts for v in r.series]
    common = max(set(lengths), key=lengths.count)
    for r in parts:
        for i, v in enumerate(r.series):
            if len(v) != common:
                raise DataError(
                    f"{r.source}: line {r.lines[i]}: sample {r.ids[i]!r} has {len(v)} steps, the others "
                    f"{common}; give --window N (and --stride S) to cut recordings into equal windows"
                )


def check_window(rec: Recordings, window: int | None, stride: int | None) -> None:
    if window is None:
        if stride is not None:
            raise DataError("a stride needs a window (--window N --stride S)")
        return
    if window < 1 or (stride is not None and stride < 1):
        raise DataError(f"--window and --stride must be positive, got window {window}, stride {stride}")
    for i, s in enumerate(rec.series):
        if len(s) < window:
            raise DataError(
                f"{rec.source}: line {rec.lines[i]}: sample {rec.ids[i]!r} has {len(s)} steps, shorter than "
                f"the window ({window}); drop it or use a shorter window"
            )
