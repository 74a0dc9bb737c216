"""qadd (ADD with TFLite's requantization): host reference vs TFLite Micro."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.nets import Net
from tests.ops.oracle import assert_exact


@pytest.mark.parametrize("act", ["NONE", "RELU", "RELU6"])
def test_add_exact(act: str, tmp_path: Path) -> None:
    n = Net([1, 6, 6, 4])
    a, ash = n.x, list(n.shape)
    n.conv(4, 3, 3, act="NONE").add_from(a, ash, act)
    g = assert_exact(n.build(), tmp_path)
    assert [op.kind for op in g.ops] == ["qconv", "qadd"]
