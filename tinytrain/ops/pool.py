"""`qpool`: MAX_POOL_2D and AVERAGE_POOL_2D (windowed with stride, or global), TFLite Micro numerics.

IR attrs: `mode` ("max" | "avg"), `kernel_h/kernel_w`, `stride_h/stride_w`, `pad_top/pad_left`
(TFLite's SAME split), `act_min/act_max`; input and output share one quantization.

Forward (`maxpool_s8`, `avgpool_win_s8`; C twins firmware/runtime/ops/tt_qpool.c): over the taps of the
window inside the input (`n` of them), max, or the sum `s` of the raw int8 values divided with TFLite's
rounding `s > 0 ? (s + n/2) / n : (s - n/2) / n` (C division, truncating); then the clamp.

Gradient: avg: `dx += g / n` for each tap of each window; max: g to the first tap (row-major) holding the
window's maximum (recomputed from the saved input).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ops.common import emit_clamp_mask, hwc_of, masked
from tinytrain.program import Step

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op

KIND = "qpool"


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    c, h, w = graph.tensors[op.inputs[0]].shape
    out = graph.tensors[op.output].shape
    if out[0] != c or not _geom_ok(op, h, w, out):
        raise TinytrainError(f"layer {op.name!r}: pool output {out} does not fit input {(c, h, w)}")
    return out


def _geom_ok(op: Op, h: int, w: int, out: tuple[int, int, int]) -> bool:
    a = op.attrs
    _, ho, wo = out
    return (
        ho >= 1
        and wo >= 1
        and (ho - 1) * int(a["stride_h"]) - int(a["pad_top"]) < h
        and (wo - 1) * int(a["stride_w"]) - int(a["pad_left"]) < w
    )


def _taps(h: int, w: int, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int, ho: int, wo: int):  # noqa: ANN202
    """For each output position, the in-bounds window ranges [y0, y1) x [x0, x1)."""
    for oy in range(ho):
        y0 = oy * sh - pt
        for ox in range(wo):
            x0 = ox * sw - pl
            yield oy, ox, max(y0, 0), min(y0 + kh, h), max(x0, 0), min(x0 + kw, w)


def maxpool_s8(
    x: np.ndarray,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    out_h: int,
    out_w: int,
    act_min: int,
    act_max: int,
) -> np.ndarray:
    h, w, c = x.shape
    y = np.empty((out_h, out_w, c), np.int8)
    for oy, ox, y0, y1, x0, x1 in _taps(
        h, w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w
    ):
        y[oy, ox] = np.clip(x[y0:y1, x0:x1].reshape(-1, c).max(axis=0), act_min, act_max)
    return y


def avgpool_win_s8(
    x: np.ndarray,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    out_h: int,
    out_w: int,
    act_min: int,
    act_max: int,
) -> np.ndarray:
    h, w, c = x.shape
    y = np.empty((out_h, out_w, c), np.int8)
    for oy, ox, y0, y1, x0, x1 in _taps(
        h, w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w
    ):
        n = (y1 - y0) * (x1 - x0)
        s = x[y0:y1, x0:x1].reshape(-1, c).astype(np.int64).sum(axis=0)
        q = np.where(s > 0, (s + n // 2) // n, -((-(s - n // 2)) // n))  # C division truncates
        y[oy, ox] = np.clip(q, act_min, act_max)
    return y


def avgpool_f_s8(
    x: np.ndarray,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    out_h: int,
    out_w: int,
    x_zero: int,
    y_zero: int,
    x_scale: float,
    y_scale: float,
    count_include_pad: int,
) -> np.ndarray:
    """onnxruntime's QLinearAveragePool (numerics "ort"): `s = Σ (x - x_zero)` over the in-bounds taps,
    `v = f32(s) * f32(x_scale / f32(n * y_scale))` (n: kh*kw with count_include_pad, else the in-bounds taps),
    clamped to [-128 - y_zero, 127 - y_zero], rounded half to even, `+ y_zero`."""
    h, w, c = x.shape
    f32 = np.float32
    y = np.empty((out_h, out_w, c), np.int8)
    for oy, ox, y0, y1, x0, x1 in _taps(
        h, w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w
    ):
        n = kernel_h * kernel_w if count_include_pad else (y1 - y0) * (x1 - x0)
        sc = f32(x_scale) / f32(f32(n) * f32(y_scale))
        s = (x[y0:y1, x0:x1].reshape(-1, c).astype(np.int64) - int(x_zero)).sum(axis=0)
        v = np.clip(s.astype(f32) * sc, f32(-128 - y_zero), f32(127 - y_zero))
        y[oy, ox] = np.rint(v).astype(np.int32) + int(y_zero)
    return y


def kernel_attrs(graph: Graph, op: Op) -> dict[str, Any]:
    a = op.attrs
    out = graph.tensors[op.output]
    keys = ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left", "act_min", "act_max")
    return {**{k: int(a[k]) for k in keys}, "out_h": int(out.shape[1]), "out_w": int(out.shape[2])}


def _float_attrs(graph: Graph, op: Op) -> dict[str, Any]:
    a = kernel_attrs(graph, op)
    del a["act_min"], a["act_max"]
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.output]
    return {
        **a,
        "x_zero": x.zero,
        "y_zero": y.zero,
        "x_scale": x.scale,
        "y_scale": y.scale,
        "count_include_pad": int(op.attrs.get("count_include_pad", 0)),
    }


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    if op.attrs.get("requant") == "float":
        return avgpool_f_s8(ins[0], **_float_attrs(graph, op))
    fn = maxpool_s8 if op.attrs["mode"] == "max" else avgpool_win_s8
    return fn(ins[0], **kernel_attrs(graph, op))


# ---- lowering ------------------------------------------------------------------------------------------
@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    kernel = "maxpool_s8" if op.attrs["mode"] == "max" else "avgpool_win_s8"
    if op.attrs.get("requant") == "float":
        b.emit(
            "avgpool_f_s8",
            {"x": b.act(op.inputs[0])},
            {"y": b.def_act(op.output)},
            _float_attrs(b.graph, op),
            op.name,
        )
        emit_clamp_mask(b, op, -128, 127)
        return
    b.emit(
        kernel, {"x": b.act(op.inputs[0])}, {"y": b.def_act(op.output)}, kernel_attrs(b.graph, op), op.name
    )
    emit_clamp_mask(b, op, int(op.attrs["act_min"]), int(op.attrs["act_max"]))


def _emit(kernel: str) -> None:
    @emitter(kernel)
    def emit(s: Step, c: EmitContext) -> str:
        h, w, ch = hwc_of(c.shape(s, "x"))
        keys = (
            "kernel_h",
            "kernel_w",
            "stride_h",
            "stride_w",
            "pad_top",
            "pad_left",
            "out_h",
            "out_w",
            "act_min",
            "act_max",
        )
        return call(kernel, c.buf(s, "x"), h, w, ch, *(c.attr(s, k) for k in keys), c.out(s))


_emit("maxpool_s8")
_emit("avgpool_win_s8")


# ---- backward (C twins firmware/runtime/ops/tt_qpool_bwd.c) --------------------------------------------
def avgpool_win_bwd_f32(
    g: np.ndarray,
    in_h: int,
    in_w: int,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    count_include_pad: int = 0,
) -> np.ndarray:
    """dx f32[in_h, in_w, C]: for each output p in raster order, `d = g[p,c] / f32(n)` (n: the window's
    in-bounds taps, or kh*kw with `count_include_pad`) added to each in-bounds tap (sequential float32 sums
    from +0.0f, p ascending)."""
    g = np.asarray(g, np.float32)
    ho, wo, c = g.shape
    dx = np.zeros((in_h, in_w, c), np.float32)
    for oy, ox, y0, y1, x0, x1 in _taps(
        in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, ho, wo
    ):
        n = kernel_h * kernel_w if count_include_pad else (y1 - y0) * (x1 - x0)
        d = g[oy, ox] / np.float32(n)
        dx[y0:y1, x0:x1] += d
    return dx


def maxpool_bwd_f32(
    g: np.ndarray,
    x: np.ndarray,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
) -> np.ndarray:
    """dx f32[H, W, C] (the shape of the saved input x): for each output p in raster order, g[p,c] added to
    the first in-bounds tap (row-major) holding the window's maximum of x."""
    g = np.asarray(g, np.float32)
    ho, wo, c = g.shape
    h, w, _ = x.shape
    dx = np.zeros((h, w, c), np.float32)
    cols = np.arange(c)
    for oy, ox, y0, y1, x0, x1 in _taps(
        h, w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, ho, wo
    ):
        win = x[y0:y1, x0:x1].reshape(-1, c)
        k = np.argmax(win, axis=0)  # the first maximum
        ww = x1 - x0
        dx[y0 + k // ww, x0 + k % ww, cols] += g[oy, ox]
    return dx


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    g = masked(b, op, g)
    x = op.inputs[0]
    if not b.needs_grad(x):
        return
    a = op.attrs
    keys = ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left")
    geo = {k: int(a[k]) for k in keys}
    dx = b.grad_buffer(x, op.name)
    if a["mode"] == "max":  # reads the pool's input activation (kept alive until here)
        b.emit("maxpool_bwd_f32", {"g": g, "x": b.act(x)}, {"dx": dx}, geo, op.name, "backward")
    else:
        _, h, w = b.graph.tensors[x].shape
        b.emit(
            "avgpool_win_bwd_f32",
            {"g": g},
            {"dx": dx},
            {"in_h": h, "in_w": w, **geo, "count_include_pad": int(a.get("count_include_pad", 0))},
            op.name,
            "backward",
        )
    b.contribute(x, dx)


_BWD_KEYS = ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left")


@emitter("avgpool_win_bwd_f32")
def _emit_avg_bwd(s: Step, c: EmitContext) -> str:
    ho, wo, ch = hwc_of(c.shape(s, "g"))
    return call(
        "avgpool_win_bwd_f32",
        c.buf(s, "g"),
        ho,
        wo,
        ch,
        c.attr(s, "in_h"),
        c.attr(s, "in_w"),
        *(c.attr(s, k) for k in _BWD_KEYS),
        c.attr(s, "count_include_pad", 0),
        c.out(s),
    )


@emitter("maxpool_bwd_f32")
def _emit_max_bwd(s: Step, c: EmitContext) -> str:
    ho, wo, ch = hwc_of(c.shape(s, "g"))
    h, w, _ = hwc_of(c.shape(s, "x"))
    return call(
        "maxpool_bwd_f32",
        c.buf(s, "g"),
        ho,
        wo,
        ch,
        c.buf(s, "x"),
        h,
        w,
        *(c.attr(s, k) for k in _BWD_KEYS),
        c.out(s),
    )


@emitter("avgpool_f_s8")
def _emit_avg_f(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc_of(c.shape(s, "x"))
    keys = (
        "kernel_h",
        "kernel_w",
        "stride_h",
        "stride_w",
        "pad_top",
        "pad_left",
        "out_h",
        "out_w",
        "x_zero",
        "y_zero",
        "x_scale",
        "y_scale",
        "count_include_pad",
    )
    return call("avgpool_f_s8", c.buf(s, "x"), h, w, ch, *(c.attr(s, k) for k in keys), c.out(s))
