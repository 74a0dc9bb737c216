"""qconv (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, Conv1D): host reference vs TFLite Micro."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.nets import Net
from tests.ops.oracle import assert_exact


@pytest.mark.parametrize(
    ("shape", "co", "k", "stride", "padding", "act"),
    [
        ([1, 9, 9, 3], 5, (3, 3), (2, 2), "SAME", "RELU"),  # asymmetric SAME split at stride 2
        ([1, 8, 8, 3], 5, (3, 3), (2, 2), "SAME", "RELU6"),
        ([1, 9, 8, 3], 4, (2, 3), (1, 2), "VALID", "RELU6"),  # rectangular kernel and stride
        ([1, 6, 6, 4], 6, (1, 1), (1, 1), "SAME", "NONE"),
        ([1, 7, 7, 2], 3, (5, 5), (1, 1), "SAME", "RELU_N1_TO_1"),
    ],
)
def test_conv2d_exact(
    shape: list[int],
    co: int,
    k: tuple[int, int],
    stride: tuple[int, int],
    padding: str,
    act: str,
    tmp_path: Path,
) -> None:
    g = assert_exact(Net(shape).conv(co, *k, stride, padding, act).build(), tmp_path)
    assert [op.kind for op in g.ops] == ["qconv"]


@pytest.mark.parametrize(
    ("k", "stride"), [((3, 3), (1, 1)), ((3, 3), (2, 2)), ((5, 5), (1, 1)), ((1, 3), (1, 2))]
)
def test_depthwise_exact(k: tuple[int, int], stride: tuple[int, int], tmp_path: Path) -> None:
    g = assert_exact(Net([1, 8, 9, 4]).conv(4, *k, stride, "SAME", "RELU6", depthwise=True).build(), tmp_path)
    assert g.ops[0].attrs["depthwise"]


def test_fully_connected_flatten_exact(tmp_path: Path) -> None:
    g = assert_exact(Net([1, 3, 3, 4]).reshape([1, 36]).fc(5).build(), tmp_path)
    assert g.ops[0].attrs["kernel_h"] == 3 and g.meta["folded"]


def test_fully_connected_per_channel_relu_exact(tmp_path: Path) -> None:
    assert_exact(Net([1, 10]).fc(6, "RELU", per_channel=True).build(), tmp_path)


def test_conv1d_expand_dims_reshape_folded(tmp_path: Path) -> None:
    n = Net([1, 32, 3]).reshape([1, 1, 32, 3], "EXPAND_DIMS").conv(6, 1, 5, (1, 2), "SAME", "RELU")
    g = assert_exact(n.reshape([1, 16, 6]).build(), tmp_path)
    assert [op.kind for op in g.ops] == ["qconv"] and g.meta["source_layout"] == "NWC"
    assert g.tensors[g.input].shape == (3, 1, 32)
