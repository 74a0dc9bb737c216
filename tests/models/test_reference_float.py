"""The reference against an independent float64 computation of the same network.

The float network is built with torch from the dequantized IR: `x = (x̃ - x_zero)·x_scale`,
`W = W̃·w_scale`, `b = b̃·x_scale·w_scale`, `F.conv2d` in float64, then fake quantization
`clamp(round_half_even(y / y_scale) + y_zero)`; residual add and pooling likewise in float64.

Bound, per layer (each layer fed the reference's own input): |difference| <= 1 LSB on every element,
and >= 99.99 % of the elements identical (the reference rounds the multiplier to float32, as the device
does, so a value within ~1e-7 of a rounding boundary may round the other way). End to end (the float
network run on its own outputs): the same top-1 class and logits within 4 LSB.

Excluded: output channels whose int32 bias is saturated at +-2^31 (dead channels in mcunet-5fps and
proxyless-w0.3): see `test_saturated_bias_channels`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinytrain.ir import Graph, Op
from tinytrain.models import ZOO
from tinytrain.reference import run_forward

from .conftest import photo


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float64)).permute(2, 0, 1)[None]


def float_op(g: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    out = g.tensors[op.output]
    if op.kind == "conv2d":
        xr = (_t(ins[0]) - op.attrs["x_zero"]) * op.attrs["x_scale"]
        s = torch.from_numpy(op.w_scales.astype(np.float64))
        w = torch.from_numpy(op.weight.astype(np.float64)) * s[:, None, None, None]
        b = torch.from_numpy(op.bias.astype(np.float64)) * op.attrs["x_scale"] * s
        y = F.conv2d(xr, w, b, op.stride, op.padding, groups=xr.shape[1] if op.depthwise else 1)
    elif op.kind == "add":
        ta, tb = (g.tensors[t] for t in op.inputs)
        y = (_t(ins[0]) - ta.zero) * ta.scale + (_t(ins[1]) - tb.zero) * tb.scale
    else:  # global average pool: integer mean, no rescale
        q = torch.round(_t(ins[0]).mean((2, 3), keepdim=True)).clamp(-128, 127)
        return q[0].permute(1, 2, 0).numpy().astype(np.int8)
    q = torch.clamp(torch.round(y / out.scale) + out.zero, -128, 127)  # torch.round: half to even
    return q[0].permute(1, 2, 0).numpy().astype(np.int8)


def saturated(op: Op) -> np.ndarray:
    if op.kind != "conv2d":
        return np.zeros(0, bool)
    return np.abs(op.bias.astype(np.int64)) >= 2**31 - 1


@pytest.mark.parametrize("model", ZOO)
def test_reference_matches_float_per_layer(zoo: dict[str, Graph], model: str) -> None:
    g = zoo[model]
    for image in ("chelsea", "coffee"):
        acts = run_forward(g, np.ascontiguousarray(photo(image).transpose(1, 2, 0)))
        total = same = 0
        for op in g.ops:
            y = float_op(g, op, [acts[t] for t in op.inputs]).astype(np.int32)
            d = np.abs(y - acts[op.output].astype(np.int32))
            if op.kind == "conv2d":
                d = d[..., ~saturated(op)]
            assert d.max(initial=0) <= 1, f"{model}/{op.name}: differs by {d.max()} LSB"
            total += d.size
            same += int((d == 0).sum())
        assert same / total >= 0.9999, f"{model}: only {same / total:.6f} identical"


@pytest.mark.parametrize("model", ZOO)
def test_reference_matches_float_end_to_end(zoo: dict[str, Graph], model: str) -> None:
    g = zoo[model]
    for image in ("chelsea", "coffee"):
        x = np.ascontiguousarray(photo(image).transpose(1, 2, 0))
        acts = run_forward(g, x)
        chain = {g.input: x}
        for op in g.ops:
            chain[op.output] = float_op(g, op, [chain[t] for t in op.inputs])
        ref, flt = acts[g.output].ravel().astype(int), chain[g.output].ravel().astype(int)
        assert ref.argmax() == flt.argmax()
        assert np.abs(ref - flt).max() <= 4


@pytest.mark.xfail(strict=True, reason="kernels.forward wraps acc + bias on int32 overflow; the source (and "
                                       "the float model) saturate. Numerics contract to be decided by the "
                                       "kernels owner (suggest a saturating add, QADD on Cortex-M).")
def test_saturated_bias_channels(zoo: dict[str, Graph]) -> None:
    g = zoo["mcunet-5fps"]
    acts = run_forward(g, np.ascontiguousarray(photo("chelsea").transpose(1, 2, 0)))
    for op in g.convs():
        sat = saturated(op)
        if sat.any():
            y = float_op(g, op, [acts[op.inputs[0]]]).astype(np.int32)[..., sat]
            assert np.abs(y - acts[op.output][..., sat].astype(np.int32)).max() <= 1, op.name
