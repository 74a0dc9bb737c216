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
F32 = np.float32


# ---- IR shape rule ---------------------------------------------------------------------------------------
def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    c, h, w = graph.tensors[op.inputs[0]].shape
    a = op.attrs
    kh, kw = int(a["kernel_h"]), int(a["kernel_w"])
    wt = op.params["weight"]
    co = wt.shape[0]
    dm = int(a.get("depth_multiplier", 1))
    exp = (c * dm, 1, kh, kw) if a.get("depthwise") else (co, c, kh, kw)
    if tuple(wt.shape) != exp or wt.dtype != np.int8:
        raise TinytrainError(f"layer {op.name!r}: weight {wt.dtype}{tuple(wt.shape)}, expected int8{exp}")
    table = ("scale",) if a.get("requant") == "float" else ("multiplier", "shift")
    for p in ("bias", "w_scales", *table):
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
    depth_multiplier: int = 1,
) -> np.ndarray:
    """Depthwise conv, TFLM numerics. x [H, W, C], w [kh, kw, C·m] -> y [Ho, Wo, C·m]; output channel o
    reads input channel o // m (m = depth_multiplier)."""
    kh, kw, co = w.shape
    if depth_multiplier != 1:
        x = x[..., np.arange(co) // int(depth_multiplier)]
    cols = _windows(x, kh, kw, stride_h, stride_w, pad_top, pad_left, out_h, out_w, x_zero)
    acc = (cols * w.astype(np.int64)[None, None]).sum(axis=(2, 3))
    return _requant(acc, bias, mult, shift, y_zero, act_min, act_max)


def _requant_float(
    acc: np.ndarray, bias: np.ndarray, scale: np.ndarray, y_zero: int, act_min: int, act_max: int
) -> np.ndarray:
    """onnxruntime's requantization (MlasRequantizeOutput): `v = f32(acc + bias) * scale[o]`, clamped to
    `[act_min - y_zero, act_max - y_zero]`, rounded half to even, `+ y_zero`."""
    acc = tflm._wrap32(acc + np.asarray(bias, np.int64))
    v = acc.astype(F32) * np.asarray(scale, F32)
    v = np.clip(v, F32(act_min - y_zero), F32(act_max - y_zero))
    return (np.rint(v).astype(np.int32) + int(y_zero)).astype(np.int8)


def qconv_f_s8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    scale: np.ndarray,
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
    """Regular conv with onnxruntime's float requantization (numerics "ort"); accumulation as `qconv_s8`."""
    co, kh, kw, _ = w.shape
    cols = _windows(x, kh, kw, stride_h, stride_w, pad_top, pad_left, out_h, out_w, x_zero)
    acc = cols.reshape(out_h * out_w, -1).astype(np.float64) @ w.reshape(co, -1).astype(np.float64).T
    acc = np.rint(acc).astype(np.int64).reshape(out_h, out_w, co)
    return _requant_float(acc, bias, scale, y_zero, act_min, act_max)


def qdwconv_f_s8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    scale: np.ndarray,
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
    depth_multiplier: int = 1,
) -> np.ndarray:
    """Depthwise conv with onnxruntime's float requantization."""
    kh, kw, co = w.shape
    if depth_multiplier != 1:
        x = x[..., np.arange(co) // int(depth_multiplier)]
    cols = _windows(x, kh, kw, stride_h, stride_w, pad_top, pad_left, out_h, out_w, x_zero)
    acc = (cols * w.astype(np.int64)[None, None]).sum(axis=(2, 3))
    return _requant_float(acc, bias, scale, y_zero, act_min, act_max)


def ort_scales(x_scale: float, w_scales: np.ndarray, y_scale: float) -> np.ndarray:
    """onnxruntime's per-channel output scale, in float32 arithmetic: `x_scale * w_scale[o] / y_scale`."""
    return (F32(x_scale) * np.asarray(w_scales, F32)) / F32(y_scale)


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
        **(
            {"depth_multiplier": int(a["depth_multiplier"])} if int(a.get("depth_multiplier", 1)) != 1 else {}
        ),
    }


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    p = op.params
    if op.attrs.get("requant") == "float":
        fnf = qdwconv_f_s8 if op.attrs.get("depthwise") else qconv_f_s8
        return fnf(ins[0], device_weight(op), p["bias"], p["scale"], **_attrs(graph, op))
    fn = qdwconv_s8 if op.attrs.get("depthwise") else qconv_s8
    return fn(ins[0], device_weight(op), p["bias"], p["multiplier"], p["shift"], **_attrs(graph, op))


# ---- float backward kernels, any geometry (C twins firmware/runtime/ops/tt_qconv_bwd.c) ---------------


def qconv_bwd_input_f32(
    g: np.ndarray,
    w: np.ndarray,
    s_w: np.ndarray,
    in_h: int,
    in_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
) -> np.ndarray:
    """Input gradient of a regular conv of any kh x kw, stride and padding. g f32[Ho, Wo, Co], w s8
    [Co, kh, kw, Ci], s_w f32[Co] -> dx f32[in_h, in_w, Ci]: `t[p,o] = g[p,o]*s_w[o]`; for each tap
    (kh, kw) ascending, then o ascending, `dx[ih,iw,:] += t[p,o]*f32(w[o,kh,kw,:])` for every output p whose
    tap lies inside the input (sequential float32 sums from +0.0f; for one dx element the order is taps
    ascending, then o)."""
    g = np.asarray(g, F32)
    ho, wo, co = g.shape
    _, kh, kw, ci = w.shape
    t = g * np.asarray(s_w, F32)
    wf = w.astype(F32)
    dx = np.zeros((in_h, in_w, ci), F32)
    for i in range(kh):
        for j in range(kw):
            oy = [y for y in range(ho) if 0 <= y * stride_h - pad_top + i < in_h]
            ox = [x for x in range(wo) if 0 <= x * stride_w - pad_left + j < in_w]
            if not oy or not ox:
                continue
            iy = np.array(oy) * stride_h - pad_top + i
            ix = np.array(ox) * stride_w - pad_left + j
            tt = t[np.ix_(oy, ox)]
            sub = dx[np.ix_(iy, ix)]
            for o in range(co):
                sub += tt[:, :, o, None] * wf[o, i, j][None, None, :]
            dx[np.ix_(iy, ix)] = sub
    return dx


def qdwconv_bwd_input_f32(
    g: np.ndarray,
    w: np.ndarray,
    s_w: np.ndarray,
    in_h: int,
    in_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    depth_multiplier: int = 1,
) -> np.ndarray:
    """Input gradient of a depthwise conv of any geometry. g f32[Ho, Wo, C], w s8 [kh, kw, C] -> dx
    f32[in_h, in_w, C]: `t = g*s_w`; for each tap ascending, then k ascending (depth multiplier m: output
    channel c*m + k), `dx[ih,iw,c] += t[p,c*m+k]*f32(w[kh,kw,c*m+k])`."""
    g = np.asarray(g, F32)
    ho, wo, co = g.shape
    kh, kw, _ = w.shape
    m = int(depth_multiplier)
    t = g * np.asarray(s_w, F32)
    wf = w.astype(F32)
    dx = np.zeros((in_h, in_w, co // m), F32)
    for i in range(kh):
        for j in range(kw):
            oy = [y for y in range(ho) if 0 <= y * stride_h - pad_top + i < in_h]
            ox = [x for x in range(wo) if 0 <= x * stride_w - pad_left + j < in_w]
            if not oy or not ox:
                continue
            iy = np.array(oy) * stride_h - pad_top + i
            ix = np.array(ox) * stride_w - pad_left + j
            tt = t[np.ix_(oy, ox)] * wf[i, j]
            sub = dx[np.ix_(iy, ix)]
            for k in range(m):  # output channel c*m + k of input channel c, k ascending
                sub += tt[..., k::m]
            dx[np.ix_(iy, ix)] = sub
    return dx


def _padded_x(
    x: np.ndarray,
    x_zero: int,
    k_in: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    pt: int,
    pl: int,
    ho: int,
    wo: int,
) -> np.ndarray:
    """f32(x - x_zero) of the first k_in channels, zero outside the input, covering every window."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x.reshape(1, 1, -1)
    h, wd = x.shape[0], x.shape[1]
    hp = max(h + pt, (ho - 1) * sh + kh)
    wp = max(wd + pl, (wo - 1) * sw + kw)
    xp = np.zeros((hp, wp, k_in), F32)
    xp[pt : pt + h, pl : pl + wd] = (x[..., :k_in].astype(np.int32) - int(x_zero)).astype(F32)
    return xp


def qconv_wgrad_f32(
    g: np.ndarray,
    x: np.ndarray,
    x_zero: int,
    k_in: int,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
) -> np.ndarray:
    """Weight-gradient sums of a regular conv of any geometry: g f32[Ho, Wo, Co], x s8 [H, W, Cx] (first
    k_in channels read) -> S f32[Co, kh, kw, k_in], `S[o,i,j,c] = Σ_{p raster asc} g[p,o]*f32(x[..] - x_zero)`
    over the taps inside the input (sequential float32 from +0.0f; a padded tap adds +-0, which changes
    no sum). The update is `conv2d_weight_update` (tinytrain/ops/conv2d/update.py)."""
    g = np.asarray(g, F32)
    ho, wo, co = g.shape
    xp = _padded_x(x, x_zero, int(k_in), kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, ho, wo)
    s = np.zeros((co, kernel_h, kernel_w, int(k_in)), F32)
    tmp = np.empty_like(s)
    for oy in range(ho):
        for ox in range(wo):
            win = xp[oy * stride_h : oy * stride_h + kernel_h, ox * stride_w : ox * stride_w + kernel_w]
            np.multiply(g[oy, ox][:, None, None, None], win[None], out=tmp)
            s += tmp
    return s


def qdwconv_wgrad_f32(
    g: np.ndarray,
    x: np.ndarray,
    x_zero: int,
    k_in: int,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    depth_multiplier: int = 1,
) -> np.ndarray:
    """Depthwise weight-gradient sums, any geometry: -> S f32[kh, kw, k_in], `S[i,j,c] = Σ_{p raster asc}
    g[p,c]*f32(x[..,c] - x_zero)`, c < k_in. The update is `dwconv2d_weight_update`."""
    g = np.asarray(g, F32)
    ho, wo, _ = g.shape
    k = int(k_in)  # weight (output) channels; output channel o reads input channel o // depth_multiplier
    if depth_multiplier != 1:
        x = np.asarray(x).reshape(-1, *np.asarray(x).shape[-2:]) if np.asarray(x).ndim == 3 else np.asarray(x)
        x = x[..., np.arange(k) // int(depth_multiplier)]
    xp = _padded_x(x, x_zero, k, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, ho, wo)
    s = np.zeros((kernel_h, kernel_w, k), F32)
    tmp = np.empty_like(s)
    for oy in range(ho):
        for ox in range(wo):
            win = xp[oy * stride_h : oy * stride_h + kernel_h, ox * stride_w : ox * stride_w + kernel_w]
            np.multiply(g[oy, ox, :k][None, None], win, out=tmp)
            s += tmp
    return s


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


def _dm(op: Op) -> int:
    return int(op.attrs.get("depth_multiplier", 1)) if op.attrs.get("depthwise") else 1


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
    }
    if op.attrs.get("requant") == "float":  # onnxruntime's float scale per output channel
        out["scale"] = b.buffer(
            f"qf:{op.name}", "f32", p["scale"].shape, Storage.FLASH, "table", op.name, p["scale"].astype(F32)
        )
    else:  # TFLite Micro's fixed-point multiplier and shift
        out["mult"] = b.buffer(
            f"qm:{op.name}",
            "s32",
            p["multiplier"].shape,
            Storage.FLASH,
            "table",
            op.name,
            p["multiplier"].astype(np.int32),
        )
        out["shift"] = b.buffer(
            f"qs:{op.name}",
            "s32",
            p["shift"].shape,
            Storage.FLASH,
            "table",
            op.name,
            p["shift"].astype(np.int32),
        )
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

            sh = shadow_init(w, wu.channels * _dm(op), bool(op.attrs.get("depthwise")))
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
    tables = {"mult": p["mult"], "shift": p["shift"]} if "mult" in p else {"scale": p["scale"]}
    if "scale" in p:
        kernel = kernel.replace("_s8", "_f_s8")
    b.emit(
        kernel,
        {"x": b.act(op.inputs[0]), "w": p["w"], "bias": p["bias"], **tables},
        {"y": b.def_act(op.output)},
        _attrs(b.graph, op),
        op.name,
    )
    emit_clamp_mask(b, op, int(op.attrs["act_min"]), int(op.attrs["act_max"]))


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    """Masked g; the input gradient first (old weights); the weight update (the existing fused kernel when the
    geometry is square and symmetric, else the general sums `q(dw)conv_wgrad_f32` in the arena and the
    existing `(dw)conv2d_weight_update`); the bias update."""
    g = masked(b, op, g)
    x = op.inputs[0]
    p = params(b, op)
    a = op.attrs
    depthwise = bool(a.get("depthwise"))
    geo = {k: int(a[k]) for k in ("stride_h", "stride_w", "pad_top", "pad_left")}
    dm = _dm(op)
    if dm != 1:
        geo["depth_multiplier"] = dm
    if b.needs_grad(x):
        _, h, w = b.graph.tensors[x].shape
        dx = b.grad_buffer(x, op.name)
        b.emit(
            "qdwconv_bwd_input_f32" if depthwise else "qconv_bwd_input_f32",
            {"g": g, "w": p["w"], "s_w": p["sw"]},
            {"dx": dx},
            {"in_h": h, "in_w": w, **geo},
            op.name,
            "backward",
        )
        b.contribute(x, dx)
    wu = b.scheme.weights.get(op.name)
    if wu is not None:
        square = _geometry_square(op)
        if square is not None and dm == 1 and b.options.reorder and not b.options.buffered:
            attrs = {"x_zero": int(a["x_zero"]), "stride": square[0], "pad": square[1]}
            b.update_weight(
                op, g, "dwconv2d_wgrad_update" if depthwise else "conv2d_wgrad_update", "", "", attrs
            )
        else:
            _general_weight_update(b, op, g, p, wu.channels * dm, depthwise)
    b.update_bias(op, g)


def _general_weight_update(b: Builder, op: Op, g: str, p: dict[str, str], k: int, depthwise: bool) -> None:
    a = op.attrs
    kh, kw = int(a["kernel_h"]), int(a["kernel_w"])
    co = b.graph.tensors[op.output].shape[0]
    shape = (kh, kw, k) if depthwise else (co, kh, kw, k)
    s = b.buffer(f"wgrad:{op.name}", "f32", shape, Storage.ARENA, "grad", op.name)
    b.wgrad_buffers[op.name] = s
    keys = ("stride_h", "stride_w", "pad_top", "pad_left")
    b.emit(
        "qdwconv_wgrad_f32" if depthwise else "qconv_wgrad_f32",
        {"g": g, "x": b.saved_input(op)},
        {"s": s},
        {
            **({"depth_multiplier": _dm(op)} if _dm(op) != 1 else {}),
            "x_zero": int(a["x_zero"]),
            "k_in": k,
            "kernel_h": kh,
            "kernel_w": kw,
            **{q: int(a[q]) for q in keys},
        },
        op.name,
        "backward",
    )
    ins = {"s": s, "w": p["w"], "q": p["q"]}
    outs = {"w": p["w"]}
    if "shadow" in p:
        ins["shadow"] = outs["shadow"] = p["shadow"]
    upd = Step(
        "dwconv2d_weight_update" if depthwise else "conv2d_weight_update",
        ins,
        outs,
        {"k_in": k, **b._runtime_update_attrs()},
        op.name,
        "update",
    )
    if b.options.reorder and not b.options.buffered:
        b._target.append(upd)  # right after the gradient: the sums die at once
    else:
        b._split_update(upd, "w")


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
    h, w, _ = hwc_of(c.shape(s, "x"))
    kh, kw, ch = c.shape(s, "w")  # output channels
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
        c.attr(s, "depth_multiplier", 1),
        c.out(s),
    )


def _emit_bwd_input(kernel: str, depthwise: bool) -> None:
    @emitter(kernel)
    def emit(s: Step, c: EmitContext) -> str:
        ho, wo, co = hwc_of(c.shape(s, "g"))
        ws = c.shape(s, "w")
        kh, kw, ci = (ws[0], ws[1], c.attr(s, "depth_multiplier", 1)) if depthwise else (ws[1], ws[2], ws[3])
        geo = [c.attr(s, k) for k in ("in_h", "in_w", "stride_h", "stride_w", "pad_top", "pad_left")]
        return call(
            kernel, c.buf(s, "g"), ho, wo, co, c.buf(s, "w"), kh, kw, ci, c.buf(s, "s_w"), *geo, c.out(s)
        )


def _emit_wgrad(kernel: str) -> None:
    @emitter(kernel)
    def emit(s: Step, c: EmitContext) -> str:
        ho, wo, co = hwc_of(c.shape(s, "g"))
        h, w, cx = hwc_of(c.shape(s, "x"))
        keys = ("x_zero", "k_in", "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left")
        return call(
            kernel,
            c.buf(s, "g"),
            ho,
            wo,
            co,
            c.buf(s, "x"),
            h,
            w,
            cx,
            *(c.attr(s, k) for k in keys),
            *([c.attr(s, "depth_multiplier", 1)] if kernel.startswith("qdw") else []),
            c.out(s),
        )


_emit_bwd_input("qconv_bwd_input_f32", False)
_emit_bwd_input("qdwconv_bwd_input_f32", True)
_emit_wgrad("qconv_wgrad_f32")
_emit_wgrad("qdwconv_wgrad_f32")


@emitter("qconv_f_s8")
def _emit_qconv_f(s: Step, c: EmitContext) -> str:
    h, w, ci = hwc_of(c.shape(s, "x"))
    co, kh, kw, _ = c.shape(s, "w")
    return call(
        "qconv_f_s8",
        c.buf(s, "x"),
        h,
        w,
        ci,
        c.buf(s, "w"),
        co,
        kh,
        kw,
        c.buf(s, "bias"),
        c.buf(s, "scale"),
        *_emit_tail(s, c),
        c.out(s),
    )


@emitter("qdwconv_f_s8")
def _emit_qdwconv_f(s: Step, c: EmitContext) -> str:
    h, w, _ = hwc_of(c.shape(s, "x"))
    kh, kw, ch = c.shape(s, "w")
    return call(
        "qdwconv_f_s8",
        c.buf(s, "x"),
        h,
        w,
        ch,
        c.buf(s, "w"),
        kh,
        kw,
        c.buf(s, "bias"),
        c.buf(s, "scale"),
        *_emit_tail(s, c),
        c.attr(s, "depth_multiplier", 1),
        c.out(s),
    )
