"""FloatNet (tinytrain/torch_model.py), the fp32 twin of an int8 graph, on imported models: its float logits
on the dequantized int8 inputs agree with the int8 logits (the rounding is all that differs), and the
scheme's parameters of an imported model train in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tinytrain.models import import_model
from tinytrain.reference.inference import run_forward
from tinytrain.sparse import resolve_scheme
from tinytrain.torch_model import FloatNet, cross_entropy, param_groups, sgd_step

DATA = Path(__file__).parent / "data"
MODELS = [
    "mobilenet_tiny.tflite",
    "sensor_conv1d.tflite",
    "squeeze_excite.tflite",
    "max_pool_3x3_s2_same.tflite",
    "avg_pool_3x3_s1_same.tflite",
    "depthwise_3x3_valid_m2.tflite",
    "pad.tflite",
    "concatenation.tflite",
    "mobilenet_tiny_qop.onnx",
    "sensor_conv1d_qdq.onnx",
    "concat_qop.onnx",
    "avg_pool_3x3_s2_qdq.onnx",
]


def _hwc(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHWC":
        return x
    if layout == "NWC":
        return x[:, None]
    if layout == "NCHW":
        return x.transpose(0, 2, 3, 1)
    return x.transpose(0, 2, 1)[:, None]  # NCW


@pytest.mark.parametrize("name", MODELS)
def test_floatnet_matches_int8_logits(name: str) -> None:
    g = import_model(DATA / name)
    io = np.load(DATA / f"{Path(name).stem}.io.npz")
    x = _hwc(io["x_q"] if "x_q" in io else io["x"], g.meta["source_layout"])
    x = x.reshape(len(x), *(g.tensors[g.input].shape[i] for i in (1, 2, 0)))
    out = g.tensors[g.output]
    net = FloatNet(g).eval()
    with torch.no_grad():
        fl = net(net.input_from_int8(x)).double().numpy()
    c, h, w = out.shape  # the int8 output HWC -> CHW, FloatNet's flatten order
    q = np.stack([run_forward(g, xi)[g.output].reshape(h, w, c).transpose(2, 0, 1).reshape(-1) for xi in x])
    q = q.astype(np.float64)
    dq = (q - out.zero) * out.scale
    err = np.abs(dq - fl) / out.scale
    sat = (q == -128) | (q == 127)
    print(name, float(err[~sat].max()) if (~sat).any() else None, float(err.mean()))
    assert err[~sat].max() <= 4.0 and err.mean() <= 1.0, (float(err[~sat].max()), float(err.mean()))
    if fl.shape[1] > 1:
        assert (dq.argmax(1) == fl.argmax(1)).mean() >= 0.9


def test_floatnet_trains_an_imported_model() -> None:
    g = import_model(DATA / "mobilenet_tiny.tflite")
    net = FloatNet(g)
    groups = param_groups(net, resolve_scheme("full", g))
    x = np.load(DATA / "mobilenet_tiny.io.npz")["x"][:8]
    y = torch.arange(8) % g.num_classes
    xs = net.input_from_int8(x)
    losses = []
    for _ in range(10):
        loss = cross_entropy(net(xs), y)
        net.zero_grad()
        loss.backward()
        sgd_step(groups, 0.05)
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
