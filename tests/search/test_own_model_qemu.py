"""A long-format CSV series (BasicMotions, shipped) trained end to end by `tinytrain emulate` on QEMU m4
with a 1-D model, no --resolution and no --scheme (the default `auto` scheme): the device matches the host
reference."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.search.test_own_model import motions_csv
from tinytrain.cli import main

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="QEMU / arm toolchain not installed",
)


@pytest.mark.qemu
@needs_qemu
def test_csv_series_trains_on_m4_with_host_match(tmp_path, monkeypatch, capsys):
    from tinytrain.sparse import auto

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(auto, "AUTO_STEPS", 40)  # the recipe's 300 analysis steps, shortened for the test
    csv = str(motions_csv(tmp_path / "motions.csv", 24))
    args = ["emulate", "--model", "sensor-conv1d", "--dataset", csv, "--board", "m4", "--steps", "3"]
    rc = main([*args, "--max-test", "4", "--json", "--no-save"])
    cap = capsys.readouterr()
    rec = json.loads(cap.out)
    assert rc == 0 and rec["board"] == "m4" and rec["matched_reference"] is True
    assert rec["losses"] == rec["match"]["reference_losses"] and len(rec["losses"]) == 3
    assert rec["resolution"] is None and rec["input_shape"] == [1, 100, 6] and rec["classes"] == 4
    assert rec["dataset_provenance"]["format"] == "csv-long"
    assert rec["sram"]["total"] <= rec["sram_budget"] and rec["instructions_per_step"]["total"] > 0
    assert "scheme auto -> " in cap.err and "Why: " in cap.err
