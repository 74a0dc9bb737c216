"""Forward lowering and gradient rule of every IR op kind, side by side.

Real-valued view used by every rule (docs/numerics.md): a conv computes
`y = Σ x·W + b` on real values `x = s_x (x̃ - x_zero)`, `W = s_w W̃`, `b = s_x s_w b̃`; the requantization
rounding is straight-through and the int8 clamp (ReLU6 when `y_zero = -128`) passes the gradient only
where the output did not saturate (the builder applies that mask before calling a rule). So:

- conv2d: `dx = Σ_o g·s_w·W̃` (1×1 / classifier, depthwise), `dW = s_x Σ_p g·(x̃ - x_zero)` (fused with
  its QAS update), `db = Σ_p g`.
- add: `y = a + b` (real values): both inputs get `g` unchanged.
- avgpool: `dx[h, w, c] = g[c] / (H·W)`; its output cannot saturate (no mask).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytrain import TinytrainError
from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.ir import Op

if TYPE_CHECKING:
    from tinytrain.compiler import Builder


# conv2d (regular k×k, pointwise 1×1, depthwise, classifier) -----------------------------------------
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


# add (residual) ---------------------------------------------------------------------------------------
@register_forward("add")
def add_forward(b: Builder, op: Op) -> None:
    ta, tb = (b.graph.tensors[t] for t in op.inputs)
    out = b.graph.tensors[op.output]
    fa = float(np.float32(ta.scale / out.scale))
    fb = float(np.float32(tb.scale / out.scale))
    b.emit(
        "add_s8",
        {"a": b.act(op.inputs[0]), "b": b.act(op.inputs[1])},
        {"y": b.def_act(op.output, inplace_of=op.inputs[0], kernel="add_s8")},
        {"fa": fa, "fb": fb, "a_zero": int(ta.zero), "b_zero": int(tb.zero), "y_zero": int(out.zero)},
        op.name,
    )


@register_gradient("add")
def add_gradient(b: Builder, op: Op, g: str) -> None:
    for t in op.inputs:  # both paths receive g itself (no copy); the builder copies only to mask
        if b.needs_grad(t):
            b.contribute(t, g)


# avgpool (global) -------------------------------------------------------------------------------------
@register_forward("avgpool", clamped=False)
def avgpool_forward(b: Builder, op: Op) -> None:
    b.emit("avgpool_s8", {"x": b.act(op.inputs[0])}, {"y": b.def_act(op.output)}, {}, op.name)


@register_gradient("avgpool")
def avgpool_gradient(b: Builder, op: Op, g: str) -> None:
    x = op.inputs[0]
    if b.needs_grad(x):
        _, h, w = b.graph.tensors[x].shape
        dx = b.grad_buffer(x, op.name)
        b.emit("avgpool_bwd_f32", {"g": g}, {"dx": dx}, {"h": h, "w": w}, op.name, "backward")
        b.contribute(x, dx)
