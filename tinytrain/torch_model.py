"""The int8 IR as a float PyTorch module: the fp32 twin of a quantized network.

`FloatNet(graph)` has the graph's architecture (same convs, strides, paddings, depthwise groups,
residual adds, global average pool, classifier) with the **dequantized** weights of the int8 model:

- conv weight `W = W̃ · w_scale[o]` (float32), bias `b = b̃ · x_scale · w_scale[o]`;
- the input: `x = (x̃ - x_zero) · x_scale` of the graph's input tensor (`input_from_int8`);
- every conv and add output is clamped to the **real range of its int8 tensor**,
  `[(-128 - zero) · scale, (127 - zero) · scale]`: for a ReLU6 layer (zero point -128) that is the
  ReLU6 of the quantized model (`[0, 255·scale]`), for a linear layer the range the int8 model can
  represent. So the float network computes what the int8 one does, minus the rounding;
- the logits are not clamped by default (`clamp_logits=False`): the fp32 baseline has no int8 logit
  range (the int8 training does not mask its saturated logits either).

Imported models' op kinds (tinytrain/ops: `qconv` with any kernel, stride and asymmetric padding, depthwise
with a channel multiplier; `qpool` max / average over the window's in-bounds taps, or all kh x kw taps with
`count_include_pad`; `qmean`, `qadd`, `qmul`, `qconcat`, `qpad`, `qrequant`, `qhardswish`, `qlogistic`) get
their real-valued meaning the same way, each output clamped to its int8 tensor's real range intersected with
the op's fused activation range `[act_min, act_max]`.

Padding is zeros in real values (the int8 kernels pad with `x_zero`, real 0). The average pool is a float
mean (the int8 one rounds). Nothing is rounded anywhere: this is the fp32 reference for "fp32 training vs
int8 training" (Table 1 of the paper) and a PyTorch anchor for the benchmark.

`scheme_parameters(net, scheme)` makes exactly the scheme's tensors trainable (the others are frozen,
`requires_grad=False`) and, for a layer trained on its first `k < Ci` input channels, masks the gradient of
the other channels (a hook), so plain SGD without momentum or weight decay updates exactly what the
int8 device updates. `param_groups(net, scheme, head_lr_scale)` splits them into the classifier's (the
conv producing the logits, learning rate `lr * head_lr_scale`: `CompileOptions.head_lr_scale`, which the
int8 program folds into the classifier's QAS tables) and the rest (`lr`), and `sgd_step` applies one
plain-SGD step to such groups.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op
from tinytrain.sparse.schemes import Scheme


def _key(layer: str) -> str:
    """ModuleDict keys cannot contain dots."""
    return layer.replace(".", "__")


def int8_range(graph: Graph, tensor: str) -> tuple[float, float]:
    """The real-valued range an int8 tensor can represent."""
    t = graph.tensors[tensor]
    return (-128 - t.zero) * t.scale, (127 - t.zero) * t.scale


class FloatNet(nn.Module):
    """Float32 twin of an int8 IR graph (see the module doc). Input NCHW real values, output `[N, K]`."""

    def __init__(self, graph: Graph, clamp_logits: bool = False) -> None:
        super().__init__()
        graph.validate()
        self.graph = graph
        self.clamp_logits = clamp_logits
        self.convs = nn.ModuleDict()
        self._plan: list[tuple[str, Op, tuple[float, float] | None]] = []
        for op in graph.ops:
            rng: tuple[float, float] | None = None
            if op.kind == "conv2d":
                self.convs[_key(op.name)] = self._conv(op)
                if op.output != graph.output or clamp_logits:
                    rng = int8_range(graph, op.output)
            elif op.kind == "add":
                rng = int8_range(graph, op.output)
            elif op.kind in _IMPORTED:
                if op.kind == "qconv":
                    self.convs[_key(op.name)] = self._qconv(op)
                if op.output != graph.output or clamp_logits:
                    rng = _act_range(graph, op)
            elif op.kind != "avgpool":
                raise TinytrainError(f"layer {op.name!r}: FloatNet has no float semantics for op {op.kind!r}")
            self._plan.append((op.kind, op, rng))

    def _conv(self, op: Op) -> nn.Conv2d:
        w = op.weight.astype(np.float64) * op.w_scales.astype(np.float64)[:, None, None, None]
        b = op.bias.astype(np.float64) * float(op.attrs["x_scale"]) * op.w_scales.astype(np.float64)
        cout, cin_g, k, _ = w.shape
        groups = cout if op.depthwise else 1
        conv = nn.Conv2d(
            cin_g * groups, cout, k, stride=op.stride, padding=op.padding, groups=groups, bias=True
        )
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            conv.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        return conv

    def _qconv(self, op: Op) -> nn.Conv2d:
        """An imported conv / depthwise / fully connected layer (its padding is applied in forward)."""
        a = op.attrs
        w = op.weight.astype(np.float64) * op.w_scales.astype(np.float64)[:, None, None, None]
        b = op.bias.astype(np.float64) * float(a["x_scale"]) * op.w_scales.astype(np.float64)
        cout, cin_g, kh, kw = w.shape
        cin = self.graph.tensors[op.inputs[0]].shape[0]
        groups = cin if a.get("depthwise") else 1
        conv = nn.Conv2d(cin, cout, (kh, kw), stride=(int(a["stride_h"]), int(a["stride_w"])), groups=groups)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            conv.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        return conv

    def conv(self, layer: str) -> nn.Conv2d:
        """The nn.Conv2d of IR layer `layer`."""
        try:
            m = self.convs[_key(layer)]
        except KeyError as exc:
            raise TinytrainError(f"no conv layer named {layer!r} in model {self.graph.name!r}") from exc
        assert isinstance(m, nn.Conv2d)
        return m

    def input_from_int8(self, x_hwc: np.ndarray) -> torch.Tensor:
        """int8 HWC sample(s) `[H, W, 3]` or `[N, H, W, 3]` -> real-valued NCHW float32 tensor."""
        x = np.asarray(x_hwc)
        if x.ndim == 3:
            x = x[None]
        t = self.graph.tensors[self.graph.input]
        real = (x.astype(np.float32) - np.float32(t.zero)) * np.float32(t.scale)
        return torch.from_numpy(np.ascontiguousarray(real.transpose(0, 3, 1, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts: dict[str, torch.Tensor] = {self.graph.input: x}
        for kind, op, rng in self._plan:
            if kind == "conv2d":
                y = self.convs[_key(op.name)](acts[op.inputs[0]])
            elif kind == "add":
                y = acts[op.inputs[0]] + acts[op.inputs[1]]
            elif kind in _IMPORTED:
                y = self._imported(op, [acts[t] for t in op.inputs])
            else:  # global average pool
                y = acts[op.inputs[0]].mean(dim=(2, 3), keepdim=True)
            if rng is not None:
                y = torch.clamp(y, rng[0], rng[1])
            acts[op.output] = y
        return acts[self.graph.output].flatten(1)

    def _imported(self, op: Op, xs: list[torch.Tensor]) -> torch.Tensor:
        a, k = op.attrs, op.kind
        if k == "qconv":
            x = F.pad(
                xs[0], (int(a["pad_left"]), int(a["pad_right"]), int(a["pad_top"]), int(a["pad_bottom"]))
            )
            return self.convs[_key(op.name)](x)
        if k == "qpool":
            return _pool(op, xs[0], self.graph.tensors[op.output].shape)
        if k == "qmean":
            return xs[0].mean(dim=(2, 3), keepdim=True)
        if k == "qadd":
            return xs[0] + xs[1]
        if k == "qmul":
            return xs[0] * xs[1]
        if k == "qconcat":
            return torch.cat(xs, dim=int(a["axis"]) + 1)
        if k == "qpad":
            t = self.graph.tensors[op.inputs[0]]
            value = (int(a["value"]) - t.zero) * t.scale
            pads = (int(a["pad_left"]), int(a["pad_right"]), int(a["pad_top"]), int(a["pad_bottom"]))
            return F.pad(xs[0], pads, value=float(value))
        if k == "qhardswish":
            return F.hardswish(xs[0])
        if k == "qlogistic":
            return torch.sigmoid(xs[0])
        return xs[0]  # qrequant: the same real value, clamped to the output's range


#: imported op kinds FloatNet gives a float meaning (see the module doc)
_IMPORTED = (
    "qconv",
    "qpool",
    "qmean",
    "qadd",
    "qmul",
    "qconcat",
    "qpad",
    "qrequant",
    "qhardswish",
    "qlogistic",
)


def _act_range(graph: Graph, op: Op) -> tuple[float, float]:
    """The real range of an imported op's output: its int8 tensor's, narrowed by a fused activation."""
    t = graph.tensors[op.output]
    lo = max(-128, int(op.attrs.get("act_min", -128)))
    hi = min(127, int(op.attrs.get("act_max", 127)))
    return (lo - t.zero) * t.scale, (hi - t.zero) * t.scale


def _pool(op: Op, x: torch.Tensor, out_shape: tuple[int, int, int]) -> torch.Tensor:
    """qpool in real values: over the window's in-bounds taps (all kh x kw with count_include_pad)."""
    a = op.attrs
    kh, kw, sh, sw = (int(a[k]) for k in ("kernel_h", "kernel_w", "stride_h", "stride_w"))
    pt, pl = int(a["pad_top"]), int(a["pad_left"])
    _, ho, wo = out_shape
    h, w = x.shape[2], x.shape[3]
    pb, pr = max(0, (ho - 1) * sh + kh - h - pt), max(0, (wo - 1) * sw + kw - w - pl)
    pads = (pl, pr, pt, pb)
    if a["mode"] == "max":
        y = F.max_pool2d(F.pad(x, pads, value=float("-inf")), (kh, kw), (sh, sw))
    else:
        s = F.avg_pool2d(F.pad(x, pads), (kh, kw), (sh, sw)) * (kh * kw)
        if a.get("count_include_pad"):
            n = torch.full_like(s, float(kh * kw))
        else:
            ones = torch.ones_like(x[:1, :1])
            n = F.avg_pool2d(F.pad(ones, pads), (kh, kw), (sh, sw)) * (kh * kw)
        y = s / n
    return y[:, :, :ho, :wo]


def scheme_parameters(net: FloatNet, scheme: Scheme) -> list[nn.Parameter]:
    """Freeze everything, then make the scheme's weights/biases trainable; returns them (for an optimizer).

    A weight trained on its first `k` input channels (depthwise: its first `k` channels) gets a gradient
    hook that zeroes the rest, so SGD (no momentum, no weight decay) leaves them unchanged. Hooks are
    registered once per call: call it once per network."""
    for p in net.parameters():
        p.requires_grad_(False)
    params: list[nn.Parameter] = []
    for layer in scheme.bias_layers:
        b = net.conv(layer).bias
        assert b is not None
        b.requires_grad_(True)
        params.append(b)
    for layer, wu in scheme.weights.items():
        conv = net.conv(layer)
        w = conv.weight
        w.requires_grad_(True)
        params.append(w)
        if wu.channels < wu.in_channels:
            mask = torch.zeros_like(w)
            if conv.groups > 1:  # depthwise [C, 1, k, k]: channel c is output (= input) channel c
                mask[: wu.channels] = 1.0
            else:
                mask[:, : wu.channels] = 1.0
            w.register_hook(_masker(mask))
    return params


def param_groups(
    net: FloatNet, scheme: Scheme, head_lr_scale: float = 1.0
) -> list[tuple[list[nn.Parameter], float]]:
    """The scheme's trainable parameters (`scheme_parameters`, so call it once per network) as
    `(params, lr multiplier)` groups: the classifier's (the conv producing the logits) with
    `head_lr_scale`, everything else with 1. Empty groups are left out."""
    params = scheme_parameters(net, scheme)
    cls = net.graph.producer(net.graph.output)
    head_ids: set[int] = set()
    if cls is not None and cls.kind == "conv2d":
        head_ids = {id(p) for p in net.conv(cls.name).parameters()}
    head = [p for p in params if id(p) in head_ids]
    rest = [p for p in params if id(p) not in head_ids]
    return [(g, m) for g, m in ((rest, 1.0), (head, float(head_lr_scale))) if g]


def sgd_step(groups: list[tuple[list[nn.Parameter], float]], lr: float) -> None:
    """One plain SGD step (no momentum, no weight decay): `p -= lr * mult * p.grad` for every group's
    parameters that have a gradient."""
    with torch.no_grad():
        for params, mult in groups:
            for p in params:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-lr * mult)


def _masker(mask: torch.Tensor) -> Any:
    def hook(g: torch.Tensor) -> torch.Tensor:
        return g * mask

    return hook


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy (the loss the int8 program computes per sample)."""
    return F.cross_entropy(logits, labels)
