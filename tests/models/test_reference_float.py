"""The reference against an independent float64 computation of the same network.

The float network is built from the dequantized IR: `x = (x̃ - x_zero)·x_scale`, `W = W̃·w_scale`,
`b = b̃·x_scale·w_scale`, a float64 convolution over real values (numpy, NCHW, tap by tap: a different
code path from the integer kernels), then fake quantization `clamp(round_half_even(y / y_scale) + y_zero)`;
residual add and pooling likewise in float64.

Bound, per layer (each layer fed the reference's own input): |difference| <= 1 LSB on every element,
and >= 99.99 % of the elements identical (the reference rounds the multiplier to float32, as the device
does, so a value within ~1e-7 of a rounding boundary may round the other way). End to end (the float
network run on its own outputs): the same top-1 class and logits within 4 LSB.

Output channels whose int32 bias is saturated at +-2^31 (dead channels in mcunet-5fps and proxyless-w0.3)
are included: the kernels add the bias with saturation, sat32(acc + bias), so they match like the others
(`test_saturated_bias_channels` checks them on their own).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinytrain.ir import Graph, Op
from tinytrain.models import ZOO
from tinytrain.reference import run_forward

from .conftest import photo


def _chw(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64).transpose(2, 0, 1)


def conv_f64(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int, depthwise: bool
) -> np.ndarray:
    """Float64 conv, x [C, H, W], w OIHW, zero padding."""
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho = (x.shape[1] + 2 * pad - k) // stride + 1
    y = np.zeros((w.shape[0], ho, ho)) + b[:, None, None]
    for i in range(k):
        for j in range(k):
            patch = xp[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (ho - 1) + 1 : stride]
            if depthwise:
                y += w[:, 0, i, j][:, None, None] * patch
            else:
                y += np.tensordot(w[:, :, i, j], patch, axes=(1, 0))
    return y


def float_op(g: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    out = g.tensors[op.output]
    if op.kind == "conv2d":
        xr = (_chw(ins[0]) - op.attrs["x_zero"]) * op.attrs["x_scale"]
        s = op.w_scales.astype(np.float64)
        w = op.weight.astype(np.float64) * s[:, None, None, None]
        b = op.bias.astype(np.float64) * op.attrs["x_scale"] * s
        y = conv_f64(xr, w, b, op.stride, op.padding, op.depthwise)
    elif op.kind == "add":
        ta, tb = (g.tensors[t] for t in op.inputs)
        y = (_chw(ins[0]) - ta.zero) * ta.scale + (_chw(ins[1]) - tb.zero) * tb.scale
    else:  # global average pool: integer mean, no rescale
        y = np.rint(_chw(ins[0]).mean(axis=(1, 2), keepdims=True))
        return np.clip(y, -128, 127).transpose(1, 2, 0).astype(np.int8)
    q = np.clip(np.rint(y / out.scale) + out.zero, -128, 127)  # np.rint: half to even
    return q.transpose(1, 2, 0).astype(np.int8)


def saturated(op: Op) -> np.ndarray:
    if op.kind != "conv2d":
        return np.zeros(0, bool)
    return np.abs(op.bias.astype(np.int64)) >= 2**31 - 1


@pytest.mark.parametrize("model", ZOO)
def test_reference_matches_float(zoo: dict[str, Graph], model: str) -> None:
    g = zoo[model]
    x = np.ascontiguousarray(photo("coffee").transpose(1, 2, 0))
    acts = run_forward(g, x)
    chain = {g.input: x}
    total = same = 0
    for op in g.ops:
        # per layer: the float layer on the reference's own input
        y = float_op(g, op, [acts[t] for t in op.inputs]).astype(np.int32)
        d = np.abs(y - acts[op.output].astype(np.int32))
        assert d.max(initial=0) <= 1, f"{model}/{op.name}: differs by {d.max()} LSB"
        total += d.size
        same += int((d == 0).sum())
        # end to end: the float network on its own outputs
        chain[op.output] = float_op(g, op, [chain[t] for t in op.inputs])
    assert same / total >= 0.9999, f"{model}: only {same / total:.6f} identical"
    ref, flt = acts[g.output].ravel().astype(int), chain[g.output].ravel().astype(int)
    assert ref.argmax() == flt.argmax()
    assert np.abs(ref - flt).max() <= 4


def test_saturated_bias_channels(zoo: dict[str, Graph]) -> None:
    g = zoo["mcunet-5fps"]
    acts = run_forward(g, np.ascontiguousarray(photo("chelsea").transpose(1, 2, 0)))
    for op in g.convs():
        sat = saturated(op)
        if sat.any():
            y = float_op(g, op, [acts[op.inputs[0]]]).astype(np.int32)[..., sat]
            assert np.abs(y - acts[op.output][..., sat].astype(np.int32)).max() <= 1, op.name
