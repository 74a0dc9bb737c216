"""`qmean`: MEAN over the spatial axes (a global average pool), TFLite Micro numerics.

IR attrs: `x_zero`, `y_zero`, `multiplier`/`shift` (QuantizeMultiplier(x_scale / y_scale)).

Forward (`mean_s8`, C twin firmware/runtime/ops/tt_qmean.c), reference_ops::QuantizedMeanOrSum: with
`n = H·W` and `k = min(floor(log2 n), 32, 31 + shift)`, `m' = (multiplier << k) / n` (int64, truncating),
`y[c] = clamp(MBQM(Σ x[.., c] - x_zero·n, m', shift - k) + y_zero, -128, 127)`.

Gradient: the real mean: `dx[h, w, c] = g[c] / n` (`avgpool_bwd_f32`, as the global average pool).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ops.common import emit_clamp_mask, hwc_of, masked
from tinytrain.program import Step

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

import numpy as np

from tinytrain.ir import Graph, Op
from tinytrain.ops import tflm

KIND = "qmean"


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    return (graph.tensors[op.inputs[0]].shape[0], 1, 1)


def mean_s8(x: np.ndarray, x_zero: int, y_zero: int, multiplier: int, shift: int) -> np.ndarray:
    h, w, c = x.shape
    n = h * w
    k = min(n.bit_length() - 1, 32, 31 + int(shift))
    m = int((int(multiplier) << k) // n)
    s = x.reshape(-1, c).astype(np.int64).sum(axis=0) - int(x_zero) * n
    y = tflm.mbqm(tflm._wrap32(s), m, int(shift) - k) + int(y_zero)
    return np.clip(y, -128, 127).astype(np.int8).reshape(1, 1, c)


def mean_f_s8(x: np.ndarray, x_zero: int, y_zero: int, scale: float) -> np.ndarray:
    """onnxruntime's QLinearGlobalAveragePool (numerics "ort"): `v = f32(Σ x - x_zero·n) * scale` with
    `scale = f32(x_scale / f32(y_scale * n))`, clamped to `[-128 - y_zero, 127 - y_zero]`, rounded half to
    even."""
    h, w, c = x.shape
    n = h * w
    s = x.reshape(-1, c).astype(np.int64).sum(axis=0) - int(x_zero) * n
    v = np.clip(s.astype(np.float32) * np.float32(scale), np.float32(-128 - y_zero), np.float32(127 - y_zero))
    return (np.rint(v).astype(np.int32) + int(y_zero)).astype(np.int8).reshape(1, 1, c)


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    a = op.attrs
    if a.get("mode") == "ort":
        return mean_f_s8(ins[0], int(a["x_zero"]), int(a["y_zero"]), float(a["scale"]))
    return mean_s8(ins[0], int(a["x_zero"]), int(a["y_zero"]), int(a["multiplier"]), int(a["shift"]))


# ---- lowering ---------------------------------------------------------------------------------------
@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    a = op.attrs
    if a.get("mode") == "ort":
        b.emit(
            "mean_f_s8",
            {"x": b.act(op.inputs[0])},
            {"y": b.def_act(op.output)},
            {"x_zero": int(a["x_zero"]), "y_zero": int(a["y_zero"]), "scale": float(a["scale"])},
            op.name,
        )
        emit_clamp_mask(b, op, -128, 127)
        return
    b.emit(
        "mean_s8",
        {"x": b.act(op.inputs[0])},
        {"y": b.def_act(op.output)},
        {k: int(a[k]) for k in ("x_zero", "y_zero", "multiplier", "shift")},
        op.name,
    )
    emit_clamp_mask(b, op, -128, 127)


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    g = masked(b, op, g)
    x = op.inputs[0]
    if b.needs_grad(x):
        _, h, w = b.graph.tensors[x].shape
        dx = b.grad_buffer(x, op.name)
        b.emit("avgpool_bwd_f32", {"g": g}, {"dx": dx}, {"h": h, "w": w}, op.name, "backward")
        b.contribute(x, dx)


@emitter("mean_s8")
def _emit(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc_of(c.shape(s, "x"))
    keys = ("x_zero", "y_zero", "multiplier", "shift")
    return call("mean_s8", c.buf(s, "x"), h, w, ch, *(c.attr(s, k) for k in keys), c.out(s))


@emitter("mean_f_s8")
def _emit_f(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc_of(c.shape(s, "x"))
    return call(
        "mean_f_s8",
        c.buf(s, "x"),
        h,
        w,
        ch,
        c.attr(s, "x_zero"),
        c.attr(s, "y_zero"),
        c.attr(s, "scale"),
        c.out(s),
    )
