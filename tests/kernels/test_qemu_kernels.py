"""The runtime kernels on emulated Cortex-M7 / M4 (SIMD paths compiled for real) vs the numpy reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.kernels.qemu_harness import check_cases, run_cases
from tinytrain.kernels.fma import fma_mode

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
        reason="QEMU / arm toolchain not installed",
    ),
]


@pytest.mark.parametrize("fma", [True, False], ids=["default", "nofma"])
@pytest.mark.parametrize("board", ["m7", "m4"])
def test_kernels_bit_exact_on_device(board: str, fma: bool, tmp_path: Path) -> None:
    """Every case of check_cases; default: the fused contract (TT_FMA 1); nofma: built with -DTT_FMA=0 against
    the two-rounding reference."""
    with fma_mode(fma):
        cases = check_cases()
    rec = run_cases(cases, board, tmp_path, fma=fma)
    assert rec.status in ("ok", "failed"), rec.summary()
    bad = {c.name: rec.metrics.get(c.name) for c in cases if rec.metrics.get(c.name) != 0}
    assert not bad, f"bytes differing from the reference per case: {bad}"
    assert "rng_state_mismatch" not in rec.metrics
    assert rec.ok, rec.summary()
