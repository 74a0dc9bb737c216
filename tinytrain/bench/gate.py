"""The regression gate: compare re-run device rows with a committed baseline CSV.

Deterministic figures only (QEMU with -icount counts the same instructions every run; the ELF's
sizes and the painted stack are exact):

- measured SRAM (`sram_total`, and `pred_total` for rows that do not fit): a regression by **any byte**;
- instructions per step (`instr_total` and each phase): a regression when more than `instr_tolerance`
  (1 %) **and** more than `instr_floor` instructions (the tiny `loss` phase is counted by SysTick in
  40-instruction ticks: one tick more is 16 % of it, and no regression);
- status: a row that was `ok` and no longer is, or that stopped fitting, is a regression.

Improvements (lower figures, a row that now fits) are reported, never failures. Rows only in the
baseline that were not re-run are listed as not checked; new rows are listed as new.

A gate that compares nothing must not pass: `load_baseline` refuses (TinytrainError, exit 2) a baseline
that is missing, not UTF-8 text, empty, truncated (a row with too few fields, no final newline, an
unterminated quote), missing a metric column, with a non-numeric or non-finite number, an empty metric of an
`ok` row, or a duplicated row; and `compare` fails when the run and the baseline share no row, or when a
re-run `ok` row lacks a metric the baseline has.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinytrain import TinytrainError
from tinytrain.bench.columns import FLOAT_COLUMNS, INT_COLUMNS
from tinytrain.bench.runner import row_key

INSTR_COLUMNS = ("instr_total", "instr_forward", "instr_loss", "instr_backward", "instr_update")
BYTE_COLUMNS = ("sram_total",)
INFO_COLUMNS = ("flash_bytes", "pred_total", "est_cycles")


#: Columns a baseline must have: the row identity and every figure the gate compares.
KEY_COLUMNS = ("kind", "model", "scheme", "board", "resolution", "status")
REQUIRED_COLUMNS = (*KEY_COLUMNS, "pred_total", *BYTE_COLUMNS, *INSTR_COLUMNS)
#: Figures an `ok` device row must have (a does-not-fit row: pred_total).
OK_ROW_METRICS = (*BYTE_COLUMNS, *INSTR_COLUMNS)


def load_baseline(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a baseline CSV, validated (see the module doc); a TinytrainError naming the file, the
    line and the column otherwise."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise TinytrainError(f"baseline {p}: no such file") from None
    except IsADirectoryError:
        raise TinytrainError(f"baseline {p}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise TinytrainError(f"baseline {p}: cannot read it ({exc.strerror or exc})") from None
    if b"\0" in raw:
        raise TinytrainError(f"baseline {p}: binary data (NUL bytes), not a CSV file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TinytrainError(f"baseline {p}: not UTF-8 text (byte {exc.start}): not a CSV file") from None
    if not text.strip():
        raise TinytrainError(f"baseline {p}: empty (no header, no rows): a gate that compares nothing fails")
    if not text.endswith("\n"):
        raise TinytrainError(f"baseline {p}: does not end with a newline: truncated? Restore it from git")
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise TinytrainError(f"baseline {p}: malformed CSV ({exc}): truncated? Restore it from git") from None
    header, body = records[0], records[1:]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise TinytrainError(f"baseline {p}: column(s) {', '.join(dup)} appear twice in the header")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise TinytrainError(
            f"baseline {p}: missing column(s) {', '.join(missing)}: the gate could not compare them"
        )
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, rec in enumerate(body, start=2):
        if not rec:
            continue  # a blank line
        if len(rec) != len(header):
            raise TinytrainError(
                f"baseline {p}: line {i} has {len(rec)} fields, the header {len(header)}: truncated or "
                "damaged row"
            )
        row: dict[str, Any] = {}
        for col, v in zip(header, rec, strict=True):
            row[col] = _number(p, i, col, v) if col in INT_COLUMNS or col in FLOAT_COLUMNS else (v or None)
            if col == "matched_reference" and v in ("True", "False"):
                row[col] = v == "True"
        if row.get("kind") == "device":
            empty = [c for c in KEY_COLUMNS if row.get(c) in (None, "")]
            if row.get("status") == "ok":
                empty += [c for c in OK_ROW_METRICS if row.get(c) is None]
            elif row.get("status") == "does-not-fit" and row.get("pred_total") is None:
                empty.append("pred_total")
            if empty:
                raise TinytrainError(
                    f"baseline {p}: line {i} ({row.get('model')} {row.get('scheme')} {row.get('board')}): "
                    f"empty {', '.join(empty)}"
                )
            key = row_key(row)
            if key in seen:
                raise TinytrainError(
                    f"baseline {p}: line {i} repeats the row of line {seen[key]} ({key}): keep one"
                )
            seen[key] = i
        rows.append(row)
    if not seen:
        raise TinytrainError(f"baseline {p}: no device rows: a gate that compares nothing fails")
    return rows


def _number(p: Path, line: int, col: str, v: str) -> int | float | None:
    if v == "":
        return None
    try:
        x = float(v)
    except ValueError:
        raise TinytrainError(f"baseline {p}: line {line}, column {col}: {v[:40]!r} is not a number") from None
    if not math.isfinite(x):
        raise TinytrainError(f"baseline {p}: line {line}, column {col}: {v!r} is not a finite number")
    if col in INT_COLUMNS:
        if x != int(x):
            raise TinytrainError(f"baseline {p}: line {line}, column {col}: {v!r} is not an integer")
        return int(x)
    return x


@dataclass
class Change:
    key: str
    column: str
    old: Any
    new: Any
    regression: bool
    why: str = ""

    def __str__(self) -> str:
        if isinstance(self.old, int | float) and isinstance(self.new, int | float) and self.old:
            rel = f" ({100 * (self.new - self.old) / self.old:+.2f} %)"
            delta = f"{self.new - self.old:+,}"
        else:
            rel, delta = "", ""
        tag = "REGRESSION" if self.regression else "improved" if self.why == "better" else "changed"
        return f"{tag:>10}  {self.key}  {self.column}: {self.old} -> {self.new} {delta}{rel}".rstrip()


@dataclass
class GateResult:
    changes: list[Change] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    new_rows: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]

    @property
    def ok(self) -> bool:
        """No regression, and at least one row compared (a gate that compares nothing fails)."""
        return not self.regressions and bool(self.checked)

    def report(self) -> str:
        lines = [
            f"baseline check: {len(self.checked)} rows compared, {len(self.regressions)} regression(s), "
            f"{sum(1 for c in self.changes if c.why == 'better')} improvement(s)"
        ]
        if not self.checked:
            lines.append(
                "  NOTHING COMPARED: the run and the baseline share no row (a gate comparing nothing fails)"
            )
        lines += [f"  {c}" for c in sorted(self.changes, key=lambda c: (not c.regression, c.key, c.column))]
        if self.not_checked:
            lines.append(f"  not re-run (only in the baseline): {len(self.not_checked)} rows")
        if self.new_rows:
            lines.append(f"  new rows (not in the baseline): {', '.join(self.new_rows)}")
        lines.append("RESULT: " + ("OK" if self.ok else "FAIL"))
        return "\n".join(lines)


def compare(
    baseline: list[dict[str, Any]],
    current: list[dict[str, Any]],
    instr_tolerance: float = 0.01,
    instr_floor: int = 200,
) -> GateResult:
    """Compare device rows of `current` against `baseline` (rows of other kinds are ignored)."""
    base = {row_key(r): r for r in baseline if r.get("kind") == "device"}
    cur = {row_key(r): r for r in current if r.get("kind") == "device"}
    res = GateResult()
    res.not_checked = sorted(set(base) - set(cur))
    res.new_rows = sorted(set(cur) - set(base))
    for key in sorted(set(base) & set(cur)):
        b, c = base[key], cur[key]
        res.checked.append(key)
        bs, cs = b.get("status"), c.get("status")
        if bs != cs:
            worse = bs == "ok" or (bs == "does-not-fit" and cs != "ok")
            res.changes.append(Change(key, "status", bs, cs, worse, "worse" if worse else "better"))
            if cs != "ok" and c.get("error"):
                res.changes[-1].new = f"{cs} ({str(c['error']).splitlines()[0][:200]})"
            if bs == "does-not-fit" and cs == "ok":
                continue
            if cs != "ok" and bs == "ok":
                continue
        if cs == "does-not-fit":
            _bytes(res, key, "pred_total", b, c)
            continue
        if cs != "ok":
            continue
        for col in BYTE_COLUMNS:
            _bytes(res, key, col, b, c)
        for col in INSTR_COLUMNS:
            o, n = b.get(col), c.get(col)
            if o is not None and n is None:  # the re-run lost a figure: nothing to compare is a failure
                res.changes.append(Change(key, col, o, n, True, "missing"))
                continue
            if o is None or n is None or o == n:
                continue
            worse = n > o * (1 + instr_tolerance) and n - o > instr_floor
            why = "worse" if worse else ("better" if n < o * (1 - instr_tolerance) else "within tolerance")
            if worse or why == "better" or col == "instr_total":
                res.changes.append(Change(key, col, o, n, worse, why))
        for col in INFO_COLUMNS:
            o, n = b.get(col), c.get(col)
            if o is not None and n is not None and o != n:
                res.changes.append(Change(key, col, o, n, False, "better" if n < o else "info"))
    return res


def _bytes(res: GateResult, key: str, col: str, b: dict[str, Any], c: dict[str, Any]) -> None:
    o, n = b.get(col), c.get(col)
    if o is None or n is None or o == n:
        if o is not None and n is None:
            res.changes.append(Change(key, col, o, n, True, "missing"))
        return
    res.changes.append(Change(key, col, o, n, n > o, "worse" if n > o else "better"))
