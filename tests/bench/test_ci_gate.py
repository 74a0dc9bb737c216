"""The CI regression gate: re-run the CI subset (bench/ci.toml: MCUNet paper:99kb at 48x48 on m7 and m4,
2 training steps each) and compare it with the committed baseline (results/baseline.csv)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tinytrain import REPO_ROOT
from tinytrain.cli import main

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
        reason="QEMU / arm toolchain not installed",
    ),
]


def test_ci_subset_matches_the_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.perf_counter()
    rc = main(
        [
            "bench",
            "--check",
            str(REPO_ROOT / "results" / "baseline.csv"),
            "--config",
            str(REPO_ROOT / "bench" / "ci.toml"),
            "--out",
            str(tmp_path),
            "--work",
            str(tmp_path / "work"),
            "--jobs",
            "2",
        ]
    )
    out = capsys.readouterr().out
    print(out)
    assert "baseline check: 2 rows compared" in out, out
    assert rc == 0, out
    assert time.perf_counter() - t0 < 300
