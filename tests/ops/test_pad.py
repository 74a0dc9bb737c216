"""qpad (PAD with the output zero point): host reference vs TFLite Micro."""

from __future__ import annotations

from pathlib import Path

from tests.ops.nets import Net
from tests.ops.oracle import assert_exact


def test_pad_then_valid_conv_exact(tmp_path: Path) -> None:
    g = assert_exact(Net([1, 4, 5, 3]).pad((1, 2, 0, 1)).conv(3, 3, 3, padding="VALID").build(), tmp_path)
    assert [op.kind for op in g.ops] == ["qpad", "qconv"]
