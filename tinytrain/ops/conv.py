"""`qconv`: CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED of an imported .tflite, TFLite Micro numerics.

IR: one input (C, H, W) -> (Co, Ho, Wo); attrs `kernel_h/kernel_w`, `stride_h/stride_w`, `pad_top/bottom/
left/right` (TFLite's SAME split: the odd pixel after), `depthwise`, `x_scale`, `x_zero`, `act_min/act_max`
(the fused activation as a clamp range); params `weight` int8 OIHW ([C, 1, kh, kw] depthwise), `bias` int32,
`w_scales` f32, `multiplier`/`shift` int32 per output channel (TFLite's QuantizeMultiplier). A fully connected
layer on an [H, W, C] input is the VALID conv with an H x W kernel (1x1 on a (K, 1, 1) vector).

Forward (kernels `qconv_s8`, `qdwconv_s8`; C twins firmware/runtime/ops/tt_qconv.c):
`acc = Σ (x - x_zero)·w` over the taps inside the input (TFLM skips the padding), `acc += bias` (int32),
`y = clamp(MultiplyByQuantizedMultiplier(acc, mult[o], shift[o]) + y_zero, act_min, act_max)`.

Gradient (real values, straight-through rounding; docs/numerics.md): the clamp passes g where
act_min < y < act_max (`mask_range_s8` at forward time); `dx = Σ_o g·s_w·w` scattered through the window
(`qconv_bwd_input_f32`, any kernel, stride, padding, depthwise or regular); the weight gradient + QAS update
(`qconv_wgrad_update`, `qdwconv_wgrad_update`) and the bias update (`bias_grad_update`) as for conv2d.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ir import Graph, Op
from tinytrain.ops import tflm
from tinytrain.ops.common import emit_clamp_mask, hwc_of, masked
from tinytrain.program import Step, Storage

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

KIND = "qconv"


# ---- IR shape rule ---------------------------------------------------------------------------------------
def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    c, h, w = graph.tensors[op.inputs[0]].shape
    a = op.attrs
    kh, kw = int(a["kernel_h"]), int(a["kernel_w"])
    wt = op.params["weight"]
    co = wt.shape[0]
    exp = (c, 1, kh, kw) if a.get("depthwise") else (co, c, kh, kw)
    if tuple(wt.shape) != exp or wt.dtype != np.int8:
        raise TinytrainError(f"layer {op.name!r}: weight {wt.dtype}{tuple(wt.shape)}, expected int8{exp}")
    for p in ("bias", "w_scales", "multiplier", "shift"):
        if op.params[p].shape != (co,):
            raise TinytrainError(f"layer {op.name!r}: {p} must have {co} entries")
    ho = (h + int(a["pad_top"]) + int(a["pad_bottom"]) - kh) // int(a["stride_h"]) + 1
    wo = (w + int(a["pad_left"]) + int(a["pad_right"]) - kw) // int(a["stride_w"]) + 1
    return (co, ho, wo)


def num_params(op: Op) -> int:
    return int(op.params["weight"].size + op.params["bias"].size)


def macs(graph: Graph, op: Op) -> int:
    c, h, w = graph.tensors[op.output].shape
    return int(c * h * w * np.prod(op.params["weight"].shape[1:]))


def device_weight(op: Op) -> np.ndarray:
    """OHWI (regular) or [kh, kw, C] (depthwise), the layouts of the existing conv kernels."""
    w = op.params["weight"]
    if op.attrs.get("depthwise"):
        return np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1))


# ---- numpy reference kernels (the spec of the C twins) -----------------------------------------------
def _windows(
    x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int, ho: int, wo: int, x_zero: int
) -> np.ndarray:
    """int64 (x - x_zero) windows [Ho, Wo, kh, kw, C], zero outside the input."""
    h, w, c = x.shape
    pb = max(0, (ho - 1) * sh + kh - h - pt)
    pr = max(0, (wo - 1) * sw + kw - w - pl)
    xs = np.pad(x.astype(np.int64) - int(x_zero), ((pt, pb), (pl, pr), (0, 0)))
    cols = np.empty((ho, wo, kh, kw, c), np.int64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j, :] = xs[i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw, :]
    return cols


def _requant(
    acc: np.ndarray,
    bias: np.ndarray,
    mult: np.ndarray,
    shift: np.ndarray,
    y_zero: int,
    act_min: int,
    act_max: int,
) -> np.ndarray:
    acc = tflm._wrap32(acc + np.asarray(bias, np.int64))
    v = tflm.mbqm(acc, np.asarray(mult, np.int64), np.asarray(shift, np.int64)) + int(y_zero)
    return np.clip(v, act_min, act_max).astype(np.int8)


def qconv_s8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    mult: np.ndarray,
    shift: np.ndarray,
    x_zero: int,
    y_zero: int,
    act_min: int,
    act_max: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    out_h: int,
    out_w: int,
) -> np.ndarray:
    """Regular conv, TFLM numerics. x [H, W, Ci] s8, w [Co, kh, kw, Ci] s8 -> y [Ho, Wo, Co] s8."""
    co, kh, kw, _ = w.shape
    cols = _windows(x, kh, kw, stride_h, stride_w, pad_top, pad_left, out_h, out_w, x_zero)
    acc = cols.reshape(out_h * out_w, -1).astype(np.float64) @ w.reshape(co, -1).astype(np.float64).T
    acc = np.rint(acc).astype(np.int64).reshape(out_h, out_w, co)  # integer-valued, < 2^53: exact
    return _requant(acc, bias, mult, shift, y_zero, act_min, act_max)


def qdwconv_s8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    mult: np.ndarray,
    shift: np.ndarray,
    x_zero: int,
    y_zero: int,
    act_min: int,
    act_max: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    out_h: int,
    out_w: int,
) -> np.ndarray:
    """Depthwise conv (multiplier 1), TFLM numerics. x [H, W, C], w [kh, kw, C] -> y [Ho, Wo, C]."""
    kh, kw, _ = w.shape
    cols = _windows(x, kh, kw, stride_h, stride_w, pad_top, pad_left, out_h, out_w, x_zero)
    acc = (cols * w.astype(np.int64)[None, None]).sum(axis=(2, 3))
    return _requant(acc, bias, mult, shift, y_zero, act_min, act_max)


def _attrs(graph: Graph, op: Op) -> dict[str, Any]:
    a = op.attrs
    out = graph.tensors[op.output]
    return {
        "x_zero": int(a["x_zero"]),
        "y_zero": int(out.zero),
        "act_min": int(a["act_min"]),
        "act_max": int(a["act_max"]),
        "stride_h": int(a["stride_h"]),
        "stride_w": int(a["stride_w"]),
        "pad_top": int(a["pad_top"]),
        "pad_left": int(a["pad_left"]),
        "out_h": int(out.shape[1]),
        "out_w": int(out.shape[2]),
    }


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    fn = qdwconv_s8 if op.attrs.get("depthwise") else qconv_s8
    p = op.params
    return fn(ins[0], device_weight(op), p["bias"], p["multiplier"], p["shift"], **_attrs(graph, op))


# ---- lowering: forward and gradient rules ------------------------------------------------------------
def _geometry_square(op: Op) -> tuple[int, int] | None:
    """(stride, pad) when the existing square-kernel backward kernels apply: kh == kw, equal strides,
    the same padding on every side."""
    a = op.attrs
    pads = {int(a["pad_top"]), int(a["pad_bottom"]), int(a["pad_left"]), int(a["pad_right"])}
    if (
        int(a["kernel_h"]) == int(a["kernel_w"])
        and int(a["stride_h"]) == int(a["stride_w"])
        and len(pads) == 1
    ):
        return int(a["stride_h"]), pads.pop()
    return None


def params(b: Builder, op: Op) -> dict[str, str]:
    """Buffers of a qconv: weight (device layout), bias, TFLM multiplier/shift tables, weight scales (if an
    input gradient needs them), QAS tables (if trained). Cached in the builder like conv2d's."""
    if op.name in b._params:
        return b._params[op.name]
    p = op.params
    w = device_weight(op)
    wu = b.scheme.weights.get(op.name)
    train_b = op.name in b.scheme.bias_layers
    x_scale = float(op.attrs["x_scale"])
    ws = p["w_scales"].astype(np.float64)
    out = {
        "w": b.buffer(
            f"w:{op.name}", "s8", w.shape, Storage.SRAM if wu else Storage.FLASH, "weight", op.name, w.copy()
        ),
        "bias": b.buffer(
            f"b:{op.name}",
            "s32",
            p["bias"].shape,
            Storage.SRAM if train_b else Storage.FLASH,
            "bias",
            op.name,
            p["bias"].astype(np.int32).copy(),
        ),
        "mult": b.buffer(
            f"qm:{op.name}",
            "s32",
            p["multiplier"].shape,
            Storage.FLASH,
            "table",
            op.name,
            p["multiplier"].astype(np.int32),
        ),
        "shift": b.buffer(
            f"qs:{op.name}",
            "s32",
            p["shift"].shape,
            Storage.FLASH,
            "table",
            op.name,
            p["shift"].astype(np.int32),
        ),
    }
    if b.needs_grad(op.inputs[0]):
        out["sw"] = b.buffer(
            f"sw:{op.name}",
            "f32",
            ws.shape,
            Storage.FLASH,
            "table",
            op.name,
            p["w_scales"].astype(np.float32),
        )
    lr_mult = b.options.head_lr_scale if op.output == b.graph.output else 1.0
    if wu:
        q = lr_mult * (x_scale / ws if b.options.qas else x_scale * ws)
        out["q"] = b.buffer(
            f"q:{op.name}", "f32", ws.shape, Storage.FLASH, "table", op.name, q.astype(np.float32)
        )
        if b.options.update_rule == "shadow":
            from tinytrain.kernels.update import shadow_init

            sh = shadow_init(w, wu.channels, bool(op.attrs.get("depthwise")))
            out["shadow"] = b.buffer(
                f"shadow:{op.name}", "f32", sh.shape, Storage.SRAM, "shadow", op.name, sh
            )
    if train_b:
        qb = lr_mult * (1.0 / (x_scale * ws) if b.options.qas else x_scale * ws)
        out["qb"] = b.buffer(
            f"qb:{op.name}", "f32", ws.shape, Storage.FLASH, "table", op.name, qb.astype(np.float32)
        )
    b._params[op.name] = out
    return out


@register_forward(KIND, clamped=False)  # the clamp is the fused activation's: masked by the rule itself
def forward(b: Builder, op: Op) -> None:
    p = params(b, op)
    kernel = "qdwconv_s8" if op.attrs.get("depthwise") else "qconv_s8"
    b.emit(
        kernel,
        {"x": b.act(op.inputs[0]), "w": p["w"], "bias": p["bias"], "mult": p["mult"], "shift": p["shift"]},
        {"y": b.def_act(op.output)},
        _attrs(b.graph, op),
        op.name,
    )
    emit_clamp_mask(b, op, int(op.attrs["act_min"]), int(op.attrs["act_max"]))


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    g = masked(b, op, g)
    x = op.inputs[0]
    p = params(b, op)
    depthwise = bool(op.attrs.get("depthwise"))
    geom = _geometry_square(op)
    trains_w = op.name in b.scheme.weights
    if (b.needs_grad(x) or trains_w) and geom is None:
        a = op.attrs
        raise TinytrainError(
            f"layer {op.name!r} ({a.get('source_op', KIND)} {a['kernel_h']}x{a['kernel_w']}, "
            f"stride {a['stride_h']}x{a['stride_w']}, padding t{a['pad_top']} b{a['pad_bottom']} "
            f"l{a['pad_left']} r{a['pad_right']}): a gradient through this geometry (non-square kernel or "
            f"stride, or TFLite's asymmetric SAME split) has no kernel yet; train only later layers "
            f"(scheme 'last' or a JSON scheme naming layers after it)"
        )
    if b.needs_grad(x):
        assert geom is not None
        stride, pad = geom
        dx = b.grad_buffer(x, op.name)
        if depthwise:
            _, h, w = b.graph.tensors[x].shape
            b.emit(
                "dwconv2d_bwd_input_f32",
                {"g": g, "w": p["w"], "s_w": p["sw"]},
                {"dx": dx},
                {"in_h": h, "in_w": w, "stride": stride, "pad": pad},
                op.name,
                "backward",
            )
        elif int(op.attrs["kernel_h"]) == 1 and stride == 1:
            b.emit(
                "conv2d_bwd_input_f32",
                {"g": g, "w": p["w"], "s_w": p["sw"]},
                {"dx": dx},
                {},
                op.name,
                "backward",
            )
        else:
            raise TinytrainError(
                f"layer {op.name!r}: a {op.attrs['kernel_h']}x{op.attrs['kernel_w']} stride {stride} "
                f"regular conv has no input-gradient kernel; only 1x1 stride-1 and depthwise layers pass a "
                f"gradient to their input (train layers after it)"
            )
        b.contribute(x, dx)
    if trains_w:
        assert geom is not None
        if not b.options.reorder or b.options.buffered:
            raise TinytrainError(
                f"layer {op.name!r}: an imported layer's weights train with the fused update only "
                f"(reorder on, no momentum or mini-batches)"
            )
        stride, pad = geom
        attrs = {"x_zero": int(op.attrs["x_zero"]), "stride": stride, "pad": pad}
        if depthwise:
            b.update_weight(op, g, "dwconv2d_wgrad_update", "", "", attrs)
        else:
            b.update_weight(op, g, "conv2d_wgrad_update", "", "", attrs)
    b.update_bias(op, g)


# ---- C emitters (firmware/runtime/ops/tt_qconv.c) ---------------------------------------------------
def _emit_tail(s: Step, c: EmitContext) -> list[str]:
    return [
        c.attr(s, k)
        for k in (
            "x_zero",
            "y_zero",
            "act_min",
            "act_max",
            "stride_h",
            "stride_w",
            "pad_top",
            "pad_left",
            "out_h",
            "out_w",
        )
    ]


@emitter("qconv_s8")
def _emit_qconv(s: Step, c: EmitContext) -> str:
    h, w, ci = hwc_of(c.shape(s, "x"))
    co, kh, kw, _ = c.shape(s, "w")
    return call(
        "qconv_s8",
        c.buf(s, "x"),
        h,
        w,
        ci,
        c.buf(s, "w"),
        co,
        kh,
        kw,
        c.buf(s, "bias"),
        c.buf(s, "mult"),
        c.buf(s, "shift"),
        *_emit_tail(s, c),
        c.out(s),
    )


@emitter("qdwconv_s8")
def _emit_qdwconv(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc_of(c.shape(s, "x"))
    kh, kw, _ = c.shape(s, "w")
    return call(
        "qdwconv_s8",
        c.buf(s, "x"),
        h,
        w,
        ch,
        c.buf(s, "w"),
        kh,
        kw,
        c.buf(s, "bias"),
        c.buf(s, "mult"),
        c.buf(s, "shift"),
        *_emit_tail(s, c),
        c.out(s),
    )
