"""Gradient check: the host training reference vs PyTorch autograd on the same network.

The torch twin (tests/compiler/helpers.py) dequantizes the weights (W = s_w·W̃, b = s_x·s_w·b̃), snaps each
forward value to the int8 reference activation (straight-through rounding) and masks the gradient where
an output saturated (the logits excepted), in float64. The reference runs the compiled program (split
gradient kernels, nothing in place, lr = 0) in float32 with the contract's summation order.

Tolerance: for every tensor, max |ref - torch| <= 1e-4 · max |torch| (measured: <= 1e-5 on the zoo
models, ~5e-7 on the small graphs).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinytrain.models import ZOO, load_model

from .helpers import compare, random_graph, random_input, reference_gradients, torch_gradients

RTOL = 1e-4

BLOCKS = {
    "pointwise+dw3+residual": [{"expand": 2, "k": 3, "stride": 1, "out": 8}],
    "dw5 stride2, no expand": [{"expand": 1, "k": 5, "stride": 2, "out": 12}],
    "dw7 + residual, dw3 s2": [
        {"expand": 3, "k": 7, "stride": 1, "out": 8},
        {"expand": 2, "k": 3, "stride": 2, "out": 16},
    ],
    "two residual blocks": [
        {"expand": 2, "k": 3, "stride": 1, "out": 8},
        {"expand": 4, "k": 5, "stride": 1, "out": 8},
    ],
}


@pytest.mark.parametrize("name", list(BLOCKS))
@pytest.mark.parametrize("seed", [0, 1])
def test_random_graphs_full_scheme(name, seed):
    g = random_graph(seed, resolution=14 + 2 * seed, blocks=BLOCKS[name])
    x = random_input(g, seed)
    label = seed % 5
    ref = reference_gradients(g, "full", x, label)
    want = torch_gradients(g, x, label)
    assert abs(ref["loss"]["loss"] - want["loss"]["loss"]) <= 1e-5 * max(1.0, abs(want["loss"]["loss"]))
    # every conv got a weight and a bias gradient, every tensor but the input an activation gradient
    assert set(ref["w"]) == {op.name for op in g.convs()} == set(ref["b"])
    assert set(ref["act"]) == set(g.tensors) - {g.input}
    assert compare(ref, want, g, RTOL) == []


def test_partial_channels_and_sparse_scheme():
    g = random_graph(
        5,
        14,
        blocks=[{"expand": 3, "k": 3, "stride": 1, "out": 8}, {"expand": 2, "k": 3, "stride": 1, "out": 8}],
    )
    scheme = {
        "bias_last_n": 3,
        "weights": [
            {"layer": "blocks.1.pointwise1", "input_channel_ratio": 0.25},
            {"layer": "blocks.1.depthwise", "input_channel_ratio": 0.5},
        ],
    }
    x = random_input(g, 5)
    ref = reference_gradients(g, scheme, x, 1)
    assert ref["w"]["blocks.1.pointwise1"].shape == (16, 1, 1, 2)
    assert ref["w"]["blocks.1.depthwise"].shape == (3, 3, 8)
    assert set(ref["b"]) == {"blocks.1.pointwise1", "blocks.1.depthwise", "blocks.1.pointwise2", "classifier"}
    assert compare(ref, torch_gradients(g, x, 1), g, RTOL) == []


@pytest.mark.parametrize("model", ZOO)
def test_zoo_models_full_scheme(model):
    g = load_model(model, resolution=64)
    x = random_input(g, 3)
    ref = reference_gradients(g, "full", x, 7)
    want = torch_gradients(g, x, 7)
    assert len(ref["w"]) == len(g.convs())
    assert compare(ref, want, g, RTOL) == []
    assert np.isfinite(ref["loss"]["loss"])
