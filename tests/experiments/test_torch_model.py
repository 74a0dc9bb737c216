"""FloatNet: the float twin of the int8 graph, and scheme-restricted SGD on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinytrain.experiments.schemes import resolve
from tinytrain.models import load_model, replace_head
from tinytrain.reference.inference import run_forward
from tinytrain.torch_model import (
    FloatNet,
    cross_entropy,
    int8_range,
    param_groups,
    scheme_parameters,
    sgd_step,
)


@pytest.fixture(scope="module")
def graph():
    return replace_head(load_model("mcunet-5fps", resolution=32), 4, seed=1)


def _images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(-128, 128, size=(n, 8, 8, 1))
    img = np.kron(base, np.ones((1, 4, 4, 1)))  # blocky images, not pure noise
    return np.repeat(img, 3, axis=3).astype(np.int8)


def test_float_twin_tracks_the_int8_network(graph):
    """Same architecture and dequantized weights: the float logits follow the int8 ones closely."""
    g = load_model("mcunet-5fps", resolution=32)  # the pretrained 1000-class head: informative logits
    net = FloatNet(g)
    xs = _images(4)
    with torch.no_grad():
        fl = net(net.input_from_int8(xs)).numpy()
    out = g.tensors[g.output]
    for i, x in enumerate(xs):
        q = (run_forward(g, x)[g.output].reshape(-1).astype(np.float64) - out.zero) * out.scale
        assert np.corrcoef(q, fl[i])[0, 1] > 0.95


def test_clamp_ranges_are_the_int8_ranges(graph):
    net = FloatNet(graph)
    lo, hi = int8_range(
        graph,
        "blocks.0.depthwise"
        if "blocks.0.depthwise" in graph.tensors
        else graph.op("blocks.0.depthwise").output,
    )
    assert lo <= 0.0 < hi
    # the logits are not clamped by default, but are with clamp_logits=True
    assert net._plan[-1][2] is None
    assert FloatNet(graph, clamp_logits=True)._plan[-1][2] == int8_range(graph, graph.output)


def test_input_dequantization(graph):
    net = FloatNet(graph)
    x = _images(1)[0]
    t = graph.tensors[graph.input]
    got = net.input_from_int8(x)
    assert got.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(got[0, 1].numpy(), (x[:, :, 1].astype(np.float32) - t.zero) * t.scale)


def test_scheme_parameters_update_only_the_scheme(graph):
    scheme = resolve(
        {
            "bias_last_n": 2,
            "weights": [
                {"layer": "blocks.13.pointwise1", "input_channel_ratio": 0.25},
                {"layer": "blocks.13.depthwise", "input_channel_ratio": 0.5},
            ],
        },
        graph,
    )
    net = FloatNet(graph)
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    params = scheme_parameters(net, scheme)
    xs = net.input_from_int8(_images(2))
    loss = cross_entropy(net(xs), torch.tensor([0, 3]))
    loss.backward()
    with torch.no_grad():
        for p in params:
            p.add_(p.grad, alpha=-0.1)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    pw1 = "convs.blocks__13__pointwise1"
    dw = "convs.blocks__13__depthwise"
    expected = {
        f"{pw1}.weight",
        f"{dw}.weight",
        "convs.blocks__13__pointwise2.bias",
        f"{dw}.bias",
        "convs.classifier.weight",
        "convs.classifier.bias",
    }
    assert changed <= expected and {f"{pw1}.weight", "convs.classifier.weight"} <= changed
    w0, w1 = before[f"{pw1}.weight"], after[f"{pw1}.weight"]
    k = scheme.weights["blocks.13.pointwise1"].channels
    assert torch.equal(w0[:, k:], w1[:, k:]) and not torch.equal(w0[:, :k], w1[:, :k])
    d0, d1 = before[f"{dw}.weight"], after[f"{dw}.weight"]
    kd = scheme.weights["blocks.13.depthwise"].channels
    assert torch.equal(d0[kd:], d1[kd:])


def test_head_lr_scale_scales_only_the_classifier_step(graph):
    """`param_groups` puts the classifier (lr × head_lr_scale) apart from the rest (lr), as the int8
    program folds `head_lr_scale` into the classifier's QAS tables."""
    scheme = resolve("paper:99kb", graph)
    xs, ys = _images(1), torch.tensor([2])
    after = []
    for hs in (1.0, 8.0):
        net = FloatNet(graph)
        groups = param_groups(net, scheme, hs)
        assert [m for _, m in groups] == [1.0, hs]
        head = net.conv("classifier")
        assert {id(p) for p in groups[1][0]} == {id(head.weight), id(head.bias)}
        cross_entropy(net(net.input_from_int8(xs)), ys).backward()
        want = {n: p.detach().add(p.grad, alpha=-0.01 * hs) for n, p in head.named_parameters()}
        assert all(p.grad.abs().max() > 0 for p in head.parameters())
        sgd_step(groups, 0.01)
        for n, p in head.named_parameters():
            assert torch.equal(p.detach(), want[n])
        after.append({k: v.clone() for k, v in net.state_dict().items()})
    for k, v in after[0].items():  # one step from the same start: only the head moves differently
        assert torch.equal(v, after[1][k]) != k.startswith("convs.classifier.")
