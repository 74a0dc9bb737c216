"""The sensor task in QEMU on m4 (a few steps): the device matches the host reference bit for bit, the record
carries the task's accuracy, memory and time fields, and the measured SRAM fits the wearable budget."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tinytrain.job import config_from_defaults, emulate


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="QEMU missing")
def test_sensor_task_trains_on_m4_with_host_match(tmp_path: Path) -> None:
    cfg = config_from_defaults(task="sensor", steps=3, max_test=4)
    cfg.build_dir, cfg.save_record, cfg.timeout = str(tmp_path / "build"), False, 600.0
    rec = emulate(cfg).record
    assert rec["matched_reference"], {k: v for k, v in rec["match"].items() if k != "reference_losses"}
    assert rec["losses"] == rec["match"]["reference_losses"] and len(rec["losses"]) == 3
    assert rec["board"] == "m4" and rec["task"] == "sensor" and rec["dataset"] == "sensor"
    assert rec["input_shape"] == [1, 100, 6] and rec["n_train"] == 20 and rec["n_test"] == 4
    assert rec["accuracy_before"] is not None and rec["accuracy_after"] is not None
    assert rec["baseline"]["scheme"] == "last"
    assert 0 < rec["sram"]["total"] <= 64 * 1024
    assert rec["est_ms_per_step"] > 0
