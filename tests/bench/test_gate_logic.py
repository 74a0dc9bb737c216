"""The baseline comparison on synthetic CSVs (no QEMU)."""

from __future__ import annotations

from pathlib import Path

from tinytrain.bench.gate import compare
from tinytrain.bench.runner import read_csv, write_csv


def _row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "kind": "device", "model": "mcunet-5fps", "scheme": "paper:99kb", "board": "m7", "resolution": 48,
        "dataset": "faces", "classes": 2, "steps": 2, "status": "ok", "sram_total": 97_424,
        "pred_total": 97_320, "flash_bytes": 604_196, "instr_forward": 15_000_000, "instr_loss": 186,
        "instr_backward": 12_500_000, "instr_update": 4_600_000, "instr_total": 32_100_000,
    }  # fmt: skip
    row.update(over)
    return row


def _roundtrip(tmp_path: Path, name: str, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    write_csv(rows, tmp_path / name)
    return read_csv(tmp_path / name)


def test_identical_rows_pass(tmp_path: Path) -> None:
    base = _roundtrip(tmp_path, "b.csv", [_row(), _row(board="m4")])
    res = compare(base, _roundtrip(tmp_path, "c.csv", [_row(), _row(board="m4")]))
    assert res.ok and len(res.checked) == 2 and not res.changes
    assert "RESULT: OK" in res.report()


def test_sram_one_byte_more_fails(tmp_path: Path) -> None:
    base = _roundtrip(tmp_path, "b.csv", [_row()])
    res = compare(base, _roundtrip(tmp_path, "c.csv", [_row(sram_total=97_425)]))
    assert not res.ok
    assert [(c.column, c.old, c.new) for c in res.regressions] == [("sram_total", 97_424, 97_425)]
    assert "REGRESSION" in res.report() and "RESULT: FAIL" in res.report()


def test_sram_less_is_an_improvement(tmp_path: Path) -> None:
    base = _roundtrip(tmp_path, "b.csv", [_row()])
    res = compare(base, _roundtrip(tmp_path, "c.csv", [_row(sram_total=90_000)]))
    assert res.ok and any(c.why == "better" and c.column == "sram_total" for c in res.changes)
    assert "improved" in res.report()


def test_instructions_half_percent_passes_two_percent_fails(tmp_path: Path) -> None:
    base = _roundtrip(tmp_path, "b.csv", [_row()])
    plus_half = _row(instr_total=int(32_100_000 * 1.005), instr_backward=int(12_500_000 * 1.005))
    assert compare(base, _roundtrip(tmp_path, "c.csv", [plus_half])).ok
    plus_two = _row(instr_total=int(32_100_000 * 1.02))
    res = compare(base, _roundtrip(tmp_path, "d.csv", [plus_two]))
    assert not res.ok and [c.column for c in res.regressions] == ["instr_total"]
    phase_two = _row(instr_update=int(4_600_000 * 1.02))  # a phase alone regressing also fails
    assert not compare(base, _roundtrip(tmp_path, "e.csv", [phase_two])).ok
    faster = _row(instr_total=int(32_100_000 * 0.9))
    assert compare(base, _roundtrip(tmp_path, "f.csv", [faster])).ok


def test_tiny_phase_jitter_below_the_floor_passes(tmp_path: Path) -> None:
    base = _roundtrip(tmp_path, "b.csv", [_row()])
    assert compare(base, _roundtrip(tmp_path, "c.csv", [_row(instr_loss=226)])).ok  # one SysTick tick


def test_status_changes(tmp_path: Path) -> None:
    base = _roundtrip(
        tmp_path, "b.csv", [_row(), _row(scheme="full", status="does-not-fit", pred_total=900_000)]
    )
    broken = [
        _row(status="fault", error="firmware fault", sram_total=None),
        _row(scheme="full", status="does-not-fit", pred_total=900_000),
    ]
    res = compare(base, _roundtrip(tmp_path, "c.csv", broken))
    assert not res.ok and res.regressions[0].column == "status"
    fits_now = [_row(), _row(scheme="full", status="ok", pred_total=300_000)]
    res = compare(base, _roundtrip(tmp_path, "d.csv", fits_now))
    assert res.ok and any(c.column == "status" and c.why == "better" for c in res.changes)
    bigger_plan = [_row(), _row(scheme="full", status="does-not-fit", pred_total=900_001)]
    assert not compare(base, _roundtrip(tmp_path, "e.csv", bigger_plan)).ok


def test_only_matching_device_rows_are_compared(tmp_path: Path) -> None:
    paper = {
        "kind": "paper",
        "model": "mcunet-5fps",
        "scheme": "published",
        "resolution": 128,
        "status": "reference",
        "sram_total": 177_152,
    }
    base = _roundtrip(tmp_path, "b.csv", [paper, _row(), _row(board="m4")])
    res = compare(base, _roundtrip(tmp_path, "c.csv", [_row(), _row(resolution=64)]))
    assert res.ok and len(res.checked) == 1
    assert res.not_checked and res.new_rows
