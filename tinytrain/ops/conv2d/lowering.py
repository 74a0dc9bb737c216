"""conv2d (regular k×k, pointwise 1×1, depthwise, the classifier): the IR shape rule, the reference semantics
over the IR, the forward lowering and the gradient rule, side by side.

Real-valued view used by every rule (docs/numerics.md): a conv computes
`y = Σ x·W + b` on real values `x = s_x (x̃ - x_zero)`, `W = s_w W̃`, `b = s_x s_w b̃`; the requantization
rounding is straight-through and the int8 clamp (ReLU6 when `y_zero = -128`) passes the gradient only
where the output did not saturate (the builder applies that mask before calling a rule). So:

- conv2d: `dx = Σ_o g·s_w·W̃` (1×1 / classifier, depthwise), `dW = s_x Σ_p g·(x̃ - x_zero)` (fused with
  its QAS update), `db = Σ_p g`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytrain import TinytrainError
from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.ir import Graph, Op
from tinytrain.kernels.requant import requant_multipliers
from tinytrain.ops.conv2d.forward import conv2d_s8, dw_weight_hwc, dwconv2d_s8, weight_ohwi

if TYPE_CHECKING:
    from tinytrain.compiler import Builder


KIND = "conv2d"


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    """The output shape (C, H, W); checks the weight, bias and scales against it (errors name the layer)."""
    inp, out = graph.tensors[op.inputs[0]].shape, graph.tensors[op.output].shape
    w = op.weight
    groups = inp[0] if op.depthwise else 1
    exp_w = (out[0], inp[0] // groups, op.kernel, op.kernel)
    if tuple(w.shape) != exp_w or w.dtype != np.int8:
        raise TinytrainError(f"layer {op.name!r}: weight {w.dtype}{tuple(w.shape)}, expected int8{exp_w}")
    if op.bias.shape != (out[0],) or op.bias.dtype != np.int32:
        raise TinytrainError(f"layer {op.name!r}: bias must be int32[{out[0]}]")
    if op.w_scales.shape != (out[0],):
        raise TinytrainError(f"layer {op.name!r}: w_scales must be float32[{out[0]}]")
    ho = (inp[1] + 2 * op.padding - op.kernel) // op.stride + 1
    if out[1:] != (ho, ho):
        raise TinytrainError(
            f"layer {op.name!r}: output spatial {out[1:]} but input {inp[1:]} "
            f"with k={op.kernel} s={op.stride} gives {(ho, ho)}"
        )
    return out


def macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one forward pass (Graph.macs sums the same over the zoo's convolutions)."""
    c, h, w = graph.tensors[op.output].shape
    return int(c * h * w * np.prod(op.params["weight"].shape[1:]))


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    """The int8 output (HWC) of the layer on its input, as deployed (tinytrain.reference.inference)."""
    x = ins[0]
    out = graph.tensors[op.output]
    m = requant_multipliers(op.attrs["x_scale"], op.w_scales, out.scale)
    if op.depthwise:
        return dwconv2d_s8(
            x, dw_weight_hwc(op.weight), op.bias, m, op.attrs["x_zero"], out.zero, op.stride, op.padding
        )
    return conv2d_s8(
        x, weight_ohwi(op.weight), op.bias, m, op.attrs["x_zero"], out.zero, op.stride, op.padding
    )


# ---- lowering -----------------------------------------------------------------------------------------
@register_forward("conv2d")
def conv2d_forward(b: Builder, op: Op) -> None:
    out = b.graph.tensors[op.output]
    p = b.params(op)
    kernel, w = ("dwconv2d_s8" if op.depthwise else "conv2d_s8"), {"w": p["w"]}
    if "w_rest" in p:  # trainable first input channels in SRAM, the rest in flash
        kernel, w = "conv2d_split_s8", {"w": p["w"], "w_rest": p["w_rest"]}
    b.emit(
        kernel,
        {"x": b.act(op.inputs[0]), **w, "bias": p["bias"], "m": p["m"]},
        {"y": b.def_act(op.output)},
        {"x_zero": int(op.attrs["x_zero"]), "y_zero": int(out.zero), "stride": op.stride, "pad": op.padding},
        op.name,
    )


@register_gradient("conv2d")
def conv2d_gradient(b: Builder, op: Op, g: str) -> None:
    x = op.inputs[0]
    p = b.params(op)
    if b.needs_grad(x):  # input gradient first: it uses the layer's old weights
        dx = b.grad_buffer(x, op.name)
        if op.depthwise:
            _, h, w = b.graph.tensors[x].shape
            b.emit(
                "dwconv2d_bwd_input_f32",
                {"g": g, "w": p["w"], "s_w": p["sw"]},
                {"dx": dx},
                {"in_h": h, "in_w": w, "stride": op.stride, "pad": op.padding},
                op.name,
                "backward",
            )
        elif op.kernel == 1 and op.stride == 1:
            split = "w_rest" in p
            b.emit(
                "conv2d_split_bwd_input_f32" if split else "conv2d_bwd_input_f32",
                {"g": g, "w": p["w"], **({"w_rest": p["w_rest"]} if split else {}), "s_w": p["sw"]},
                {"dx": dx},
                {},
                op.name,
                "backward",
            )
        else:
            raise TinytrainError(
                f"layer {op.name!r}: conv2d {op.kernel}x{op.kernel} stride {op.stride} (regular) "
                f"has no input-gradient kernel; only 1x1 stride-1 and depthwise convs can pass "
                f"a gradient to their input (train this layer's weights, not layers before it)"
            )
        b.contribute(x, dx)
    attrs = {"x_zero": int(op.attrs["x_zero"]), "stride": op.stride, "pad": op.padding}
    if op.depthwise:
        b.update_weight(op, g, "dwconv2d_wgrad_update", "dwconv2d_wgrad_f32", "dwconv2d_weight_update", attrs)
    else:
        b.update_weight(op, g, "conv2d_wgrad_update", "conv2d_wgrad_f32", "conv2d_weight_update", attrs)
    b.update_bias(op, g)
