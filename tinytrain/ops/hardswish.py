"""`qhardswish`: HARD_SWISH `y = x·relu6(x + 3)/6` of an imported .tflite (TFLite Micro numerics) or .onnx
(onnxruntime numerics, attr `mode` "ort").

IR attrs: `x_zero`, `y_zero`, `out_mult16`/`out_exp` and `relu_mult16`/`relu_exp` (import time, as TFLite
Micro's hard_swish Prepare: `hires = x_scale / 128`, QuantizeMultiplier of `hires / y_scale` and of
`hires / (3 / 32768)`, each down-scaled to int16), `x_scale` (for the gradient).

Forward (`hardswish_s8`, C twin firmware/runtime/ops/tt_qhardswish.c), per element, int16 fixed point:
`v = (x - x_zero)·2^7`; `p = SRDHM16(v, out_mult16)`; `r = v`, shifted left saturating by `relu_exp - 1`
(if > 0), `r = SRDHM16(r, relu_mult16)`, shifted left saturating by 1 (if `relu_exp > 0`) or
`RDBPOT(r, -relu_exp)` (if < 0); `r = (r + 2^15) >> 1`; `o = RDBPOT(SDHM16(r, p), -out_exp) + y_zero`,
saturated to int8. SRDHM16 rounds, SDHM16 (`a·b / 2^15`, C division) does not.

Gradient (real values, the saved input): `dx = g·0` for x <= -3, `g·(2x + 3)/6` for -3 < x < 3, `g` for
x >= 3 (PyTorch's choice at the kinks), with `x = x_scale·(x̃ - x_zero)` (`hardswish_bwd_f32`), masked
where the output saturated.

Mode "ort" (an .onnx HardSwish, as torch.onnx inlines it: `HardSigmoid(alpha=1/6, beta=1/2)` in float between
a DequantizeLinear and a QuantizeLinear, then a Mul): IR attrs `x_scale`, `x_zero`, `h_scale`, `h_zero` (the
HardSigmoid's QuantizeLinear), `y_scale`, `y_zero`, `alpha`, `beta` (float32) and `form` "qop" / "qdq". The
output is a function of the int8 input alone, so the forward is `lut_s8` over a 256-entry table (flash):
`xf = f32(x - x_zero)·x_scale`; `h = clamp(rne(min(max(f32(xf·alpha) + beta, 0), 1) / h_scale) + h_zero)`;
then the Mul as onnxruntime runs it on x86-64: "qop" (com.microsoft QLinearMul, MLAS's SSE2 kernel)
`y = sat(cvt_rne(f32(f32((x - x_zero)·(h - h_zero))·r) + f32(y_zero)))`, `r = f32(f32(x_scale·h_scale) /
y_scale)` (cvt of a value outside int32 gives INT32_MIN: -128 after saturation); "qdq" (onnxruntime keeps
this Mul in float) `y = clamp(rne(f32(xf·f32(f32(h - h_zero)·h_scale)) / y_scale) + y_zero)`. Both checked
against onnxruntime on every int8 input over random scales (tests/models/test_onnx_hardswish.py).
Gradient: as above (`hardswish_bwd_f32` on x_scale, x_zero), masked where the output saturated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ir import Graph, Op
from tinytrain.ops import tflm
from tinytrain.ops.common import emit_clamp_mask, masked
from tinytrain.program import Step, Storage

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

KIND = "qhardswish"
ATTRS = ("x_zero", "y_zero", "out_mult16", "out_exp", "relu_mult16", "relu_exp")


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    return graph.tensors[op.inputs[0]].shape


def _down16(m: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if m >= 2**31 - 1 - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16


def params(x_scale: float, y_scale: float) -> dict[str, int]:
    f32 = np.float32
    hires = f32(1.0 / 128.0) * f32(x_scale)
    om, oe = tflm.quantize_multiplier(float(f32(hires / f32(y_scale))))
    rm, re = tflm.quantize_multiplier(float(f32(hires / f32(3.0 / 32768.0))))
    return {"out_mult16": _down16(om), "out_exp": oe, "relu_mult16": _down16(rm), "relu_exp": re}


def _srdhm16(a: np.ndarray, b: int) -> np.ndarray:
    ab = a.astype(np.int64) * int(b)
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    r = tflm._cdiv(ab + nudge, 1 << 15)
    return np.where((a == b) & (a == -32768), 32767, r)


def _sdhm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = a.astype(np.int64) * b.astype(np.int64)
    r = tflm._cdiv(ab, 1 << 15)
    return np.where((a == b) & (a == -32768), 32767, r)


def _shl_sat16(v: np.ndarray, n: int) -> np.ndarray:
    return np.clip(v.astype(np.int64) << n, -32768, 32767)


def hardswish_s8(
    x: np.ndarray, x_zero: int, y_zero: int, out_mult16: int, out_exp: int, relu_mult16: int, relu_exp: int
) -> np.ndarray:
    v = (x.astype(np.int64) - int(x_zero)) * 128  # int16: |v| <= 255 * 128
    p = _srdhm16(v, out_mult16)
    r = v
    if relu_exp > 0:
        r = _shl_sat16(r, relu_exp - 1)
    r = _srdhm16(r, relu_mult16)
    if relu_exp > 0:
        r = _shl_sat16(r, 1)
    if relu_exp < 0:
        r = tflm.rdbpot(r, -relu_exp)
    r = (r + (1 << 15)) >> 1
    o = tflm.rdbpot(_sdhm16(r, p), -out_exp) + int(y_zero)
    return np.clip(o, -128, 127).astype(np.int8)


def hardswish_bwd_f32(g: np.ndarray, x: np.ndarray, x_scale: float, x_zero: int) -> np.ndarray:
    """`dx = g·d`, `d = 0` (x <= -3), `(x·2 + 3) * f32(1/6)` in float32 (-3 < x < 3), 1 (x >= 3)."""
    f32 = np.float32
    xr = (x.astype(np.int32) - int(x_zero)).astype(f32) * f32(x_scale)
    mid = (xr * f32(2.0) + f32(3.0)) * f32(1.0 / 6.0)
    d = np.where(xr <= f32(-3.0), f32(0.0), np.where(xr >= f32(3.0), f32(1.0), mid)).astype(f32)
    return (np.asarray(g, f32).reshape(d.shape) * d).astype(f32)


ORT_ATTRS = ("x_scale", "x_zero", "h_scale", "h_zero", "y_scale", "y_zero", "alpha", "beta", "form")


def ort_table(
    x_scale: float,
    x_zero: int,
    h_scale: float,
    h_zero: int,
    y_scale: float,
    y_zero: int,
    alpha: float,
    beta: float,
    form: str,
) -> np.ndarray:
    """onnxruntime's int8 HardSwish (HardSigmoid + Mul) for every input -128..127 (mode "ort")."""
    f32 = np.float32
    x = np.arange(-128, 128, dtype=np.int64)
    xf = (x - int(x_zero)).astype(f32) * f32(x_scale)
    hs = np.minimum(np.maximum(xf * f32(alpha) + f32(beta), f32(0.0)), f32(1.0))
    with np.errstate(all="ignore"):
        h = np.clip(np.rint(hs / f32(h_scale)) + int(h_zero), -128, 127).astype(np.int64)
        if form == "qop":
            r = f32(f32(f32(x_scale) * f32(h_scale)) / f32(y_scale))
            v = np.rint(((x - int(x_zero)) * (h - int(h_zero))).astype(f32) * r + f32(y_zero))
            y = np.where(np.abs(v) < 2.0**31, np.clip(v, -128, 127), -128)
        elif form == "qdq":
            v = xf * ((h - int(h_zero)).astype(f32) * f32(h_scale)) / f32(y_scale)
            y = np.clip(np.rint(v) + int(y_zero), -128, 127)
        else:
            raise ValueError(f"HardSwish form {form!r}: qop or qdq")
    return y.astype(np.int8)


def _ort_table(op: Op) -> np.ndarray:
    a = op.attrs
    return ort_table(*(a[k] for k in ORT_ATTRS))


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    if op.attrs.get("mode") == "ort":
        return np.asarray(_ort_table(op), np.int8)[ins[0].astype(np.int32) + 128]
    return hardswish_s8(ins[0], **{k: int(op.attrs[k]) for k in ATTRS})


@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    if op.attrs.get("mode") == "ort":
        name = f"lut:{op.name}"
        if name not in b.buffers:
            b.buffer(name, "s8", (256,), Storage.FLASH, "table", op.name, _ort_table(op))
        b.emit("lut_s8", {"x": b.act(op.inputs[0]), "table": name}, {"y": b.def_act(op.output)}, {}, op.name)
        emit_clamp_mask(b, op, -128, 127)
        return
    b.emit(
        "hardswish_s8",
        {"x": b.act(op.inputs[0])},
        {"y": b.def_act(op.output)},
        {k: int(op.attrs[k]) for k in ATTRS},
        op.name,
    )
    emit_clamp_mask(b, op, -128, 127)


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    g = masked(b, op, g)
    x = op.inputs[0]
    if b.needs_grad(x):
        dx = b.grad_buffer(x, op.name)
        b.emit(
            "hardswish_bwd_f32",
            {"g": g, "x": b.act(x)},
            {"dx": dx},
            {"x_scale": float(np.float32(op.attrs["x_scale"])), "x_zero": int(op.attrs["x_zero"])},
            op.name,
            "backward",
        )
        b.contribute(x, dx)


@emitter("hardswish_s8")
def _emit(s: Step, c: EmitContext) -> str:
    return call("hardswish_s8", c.buf(s, "x"), c.size(s, "x"), *(c.attr(s, k) for k in ATTRS), c.out(s))


@emitter("hardswish_bwd_f32")
def _emit_bwd(s: Step, c: EmitContext) -> str:
    return call(
        "hardswish_bwd_f32",
        c.buf(s, "g"),
        c.buf(s, "x"),
        c.size(s, "x"),
        c.attr(s, "x_scale"),
        c.attr(s, "x_zero"),
        c.out(s),
    )
