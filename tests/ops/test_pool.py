"""qpool (MAX_POOL_2D, AVERAGE_POOL_2D windowed and global): host reference vs TFLite Micro."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.nets import Net
from tests.ops.oracle import assert_exact


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize(
    ("shape", "k", "stride", "padding"),
    [
        ([1, 7, 7, 3], (2, 2), (2, 2), "SAME"),
        ([1, 7, 7, 3], (3, 3), (2, 2), "SAME"),
        ([1, 8, 6, 3], (2, 3), (1, 2), "VALID"),
        ([1, 5, 5, 3], (5, 5), (1, 1), "VALID"),  # global
        ([1, 1, 16, 4], (1, 2), (1, 2), "VALID"),  # MaxPool1D / AveragePool1D
    ],
)
def test_pool_exact(
    mode: str, shape: list[int], k: tuple[int, int], stride: tuple[int, int], padding: str, tmp_path: Path
) -> None:
    g = assert_exact(Net(shape).pool(mode, k, stride, padding).build(), tmp_path)
    assert g.ops[0].kind == "qpool" and g.ops[0].attrs["mode"] == mode
