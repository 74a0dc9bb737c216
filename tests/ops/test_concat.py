"""qconcat (CONCATENATION along channels): host reference vs TFLite Micro."""

from __future__ import annotations

from pathlib import Path

from tests.ops.nets import Net
from tests.ops.oracle import assert_exact


def test_concat_channels_exact(tmp_path: Path) -> None:
    n = Net([1, 6, 6, 4])
    a, ash = n.x, list(n.shape)
    n.conv(5, 1, 1, act="RELU")
    t = n.b.tensors[n.x]
    n.b.tensors[a].scale, n.b.tensors[a].zero = t.scale, t.zero  # TFLM concatenates equal quantizations
    g = assert_exact(n.concat_with(a, ash).build(), tmp_path)
    assert g.tensors[g.output].shape == (9, 6, 6)
