"""The flash sample source (firmware/app/train/source_flash.c) bounds every read by the blob's size: a header
whose regions end past the blob, a truncated or a too-short blob give an error event, never an out-of-bounds
read (host-native build under ASan + UBSan); the host refuses such an image before building
(`datafile.check_image`, called by `blob_c`)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.codegen import datafile

from .fuzz import build_sanitized_trainer, relink_flash, run_native

HAVE_GCC = shutil.which("gcc") is not None


def _job(n: int = 6, steps: int = 4) -> datafile.TrainingJob:
    x = np.zeros((n, 4, 4, 3), np.int8)
    y = np.arange(n) % 2
    return datafile.TrainingJob(
        x, y, x[:2], y[:2], datafile.make_order(n, steps, 0), np.ones(steps, np.float32), 2
    )


def _with_word(data: bytes, k: int, value: int) -> bytes:
    return data[: 4 * k] + struct.pack("<I", value % 2**32) + data[4 * k + 4 :]


def test_host_checks_the_image_against_its_size() -> None:
    good = datafile.pack(_job())
    assert datafile.check_image(good)[6] == 4
    with pytest.raises(TinytrainError, match="past its"):
        datafile.check_image(good[:-1])  # the last lr cut off
    off_lr = struct.unpack_from("<I", good, 56)[0]
    with pytest.raises(TinytrainError, match="past its"):
        datafile.check_image(_with_word(good, 14, off_lr + 8))  # lr moved: in order, ends past the image
    with pytest.raises(TinytrainError, match="shorter than"):
        datafile.check_image(good[:10])
    with pytest.raises(TinytrainError, match="overlaps"):
        datafile.check_image(_with_word(good, 4, 7))  # n_train + 1: train runs into its labels
    with pytest.raises(TinytrainError, match="not a tinytrain dataset"):
        datafile.check_image(b"\0" * 64)
    assert f"tt_dataset_blob_size = {len(good)}u;" in datafile.blob_c(_job())


@pytest.mark.skipif(not HAVE_GCC, reason="no host gcc")
def test_device_flash_source_refuses_a_blob_that_ends_early(tmp_path: Path) -> None:
    exe, good = build_sanitized_trainer(tmp_path, source="flash")
    code, out = run_native(relink_flash(exe, good), tmp_path / "run0", b"")  # the build is shared
    assert code == 0, out[-2000:]
    off_lr = struct.unpack_from("<I", good, 56)[0]
    cases = {
        # lr (the last region) moved 4000 bytes on: still in order, so only the size check stops the reads
        "regions past the end": (_with_word(good, 14, off_lr + 4000), "corrupt dataset header"),
        "truncated": (good[:-40], "corrupt dataset header"),
        "shorter than the header": (good[:20], "short read"),
        "empty": (b"", "short read"),
    }
    for name, (data, words) in cases.items():
        code, out = run_native(relink_flash(exe, data), tmp_path / "run", b"")
        assert "Sanitizer" not in out and "runtime error" not in out, (name, out[-1500:])
        assert code not in (0, 86, 87) and code > 0 and '"ev":"error"' in out and words in out, (
            name,
            out[-800:],
        )
