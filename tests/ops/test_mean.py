"""qmean (MEAN over the spatial axes): host reference vs TFLite Micro."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.nets import Net
from tests.ops.oracle import assert_exact


@pytest.mark.parametrize(
    ("shape", "keep", "same"),
    [
        ([1, 5, 5, 6], False, False),
        ([1, 4, 6, 6], True, True),
        ([1, 7, 3, 5], True, False),
        ([1, 12, 6], False, False),
    ],
)
def test_mean_exact(shape: list[int], keep: bool, same: bool, tmp_path: Path) -> None:
    g = assert_exact(Net(shape).mean(keep, same).build(), tmp_path)
    assert [op.kind for op in g.ops] == ["qmean"]
