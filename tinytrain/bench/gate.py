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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinytrain.bench.runner import row_key

INSTR_COLUMNS = ("instr_total", "instr_forward", "instr_loss", "instr_backward", "instr_update")
BYTE_COLUMNS = ("sram_total",)
INFO_COLUMNS = ("flash_bytes", "pred_total", "est_cycles")


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
        return not self.regressions

    def report(self) -> str:
        lines = [
            f"baseline check: {len(self.checked)} rows compared, {len(self.regressions)} regression(s), "
            f"{sum(1 for c in self.changes if c.why == 'better')} improvement(s)"
        ]
        lines += [f"  {c}" for c in sorted(self.changes, key=lambda c: (not c.regression, c.key, c.column))]
        if self.not_checked:
            lines.append(f"  not re-run (only in the baseline): {len(self.not_checked)} rows")
        if self.new_rows:
            lines.append(f"  new rows (not in the baseline): {', '.join(self.new_rows)}")
        lines.append("RESULT: " + ("FAIL" if self.regressions else "OK"))
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
