"""`qlogistic`: LOGISTIC (sigmoid) of an imported .tflite, TFLite Micro numerics (reference_integer_ops::
Logistic with gemmlowp's fixed-point logistic on Q4.27).

IR attrs: `x_zero`, `mult`, `shift` (frexp of `x_scale·2^27`, no renormalisation), `radius`
(CalculateInputRadius(4, shift)), `y_scale`, `y_zero` (TFLite requires 1/256 and -128).

Forward (`logistic_s8`, C twin firmware/runtime/ops/tt_qlogistic.c): `v = x - x_zero`; `v <= -radius` -> -128,
`v >= radius` -> 127, else `q4 = MBQM(v, mult, shift)`, `q0 = logistic_q4_27(q4)` (gemmlowp: exp on negative
values by a Taylor polynomial around -1/8 and a barrel shifter of exp(-2^k) constants, then 1/(1+x) by three
Newton-Raphson steps), `y = clamp(RDBPOT(q0, 23) - 128)`.

Gradient: `dx = g·σ(1 - σ)` with `σ = y_scale·(ỹ - y_zero)` from the saved output (`logistic_bwd_f32`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ir import Graph, Op
from tinytrain.ops import tflm
from tinytrain.ops.common import emit_clamp_mask, masked
from tinytrain.program import Step

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

KIND = "qlogistic"
ATTRS = ("x_zero", "mult", "shift", "radius")
I32_MAX, I32_MIN = 2**31 - 1, -(2**31)


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    return graph.tensors[op.inputs[0]].shape


def params(x_scale: float) -> dict[str, int]:
    real = float(np.float32(x_scale)) * float(1 << 27)
    q, shift = math.frexp(real)
    mult = int(math.copysign(math.floor(abs(q) * (1 << 31) + 0.5), q))
    radius = math.floor(1.0 * 15 * (1 << 27) / (2.0**shift))
    return {"mult": mult, "shift": shift, "radius": int(radius)}


# gemmlowp fixed point on int64 arrays holding int32 values ------------------------------------------------
def _mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return tflm.srdhm(a, b)


def _sat_shl(x: np.ndarray, e: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT<e> for e > 0."""
    thr = (1 << (31 - e)) - 1
    return np.where(x > thr, I32_MAX, np.where(x < -thr, I32_MIN, x << e))


def _exp_quarter(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31."""
    const_term, third = 1895147668, 715827883
    x = tflm._wrap32(a + (1 << 28))
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_4 = tflm.rdbpot(x4, 2)
    inner = tflm.rdbpot(tflm._wrap32(_mul(tflm._wrap32(x4_4 + x3), third) + x2), 1)
    return tflm._wrap32(const_term + _mul(np.full_like(x, const_term), tflm._wrap32(x + inner)))


def _exp_neg(a: np.ndarray) -> np.ndarray:
    """exp(a) for a <= 0 given in Q4.27, Q0.31 result."""
    quarter = 1 << 25
    amq = tflm._wrap32((a & (quarter - 1)) - quarter)
    result = _exp_quarter(_sat_shl(amq, 4))
    remainder = tflm._wrap32(amq - a)
    for exp, mult in (
        (-2, 1672461947),
        (-1, 1302514674),
        (0, 790015084),
        (1, 290630308),
        (2, 39332535),
        (3, 720401),
        (4, 242),
    ):
        bit = 1 << (27 + exp)
        result = np.where((remainder & bit) != 0, _mul(result, mult), result)
    return np.where(a == 0, I32_MAX, result)


def _one_over_one_plus(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a in (0, 1) Q0.31, result Q0.31 (Newton-Raphson with 2 integer bits)."""
    s = a + I32_MAX
    half = np.where(s >= 0, (s + 1) // 2, -((-(s - 1)) // 2))  # RoundingHalfSum: (sum + sign) / 2, truncating
    x = tflm._wrap32(1515870810 + _mul(half, -1010580540))
    for _ in range(3):
        hx = _mul(half, x)
        one_minus = tflm._wrap32((1 << 29) - hx)
        x = tflm._wrap32(x + _sat_shl(_mul(x, one_minus), 2))
    return _sat_shl(x, 1)


def logistic_q4_27(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.int64)
    absa = np.where(a > 0, a, -a)
    pos = _one_over_one_plus(_exp_neg(-absa))
    neg = tflm._wrap32(I32_MAX - pos)
    return np.where(a == 0, 1 << 30, np.where(a > 0, pos, neg))


def logistic_s8(x: np.ndarray, x_zero: int, mult: int, shift: int, radius: int) -> np.ndarray:
    v = x.astype(np.int64) - int(x_zero)
    q4 = tflm.mbqm(v, mult, shift)
    q0 = logistic_q4_27(q4)
    y = np.clip(tflm.rdbpot(q0, 23) - 128, -128, 127)
    y = np.where(v <= -radius, -128, np.where(v >= radius, 127, y))
    return y.astype(np.int8)


def logistic_bwd_f32(g: np.ndarray, y: np.ndarray, y_scale: float, y_zero: int) -> np.ndarray:
    f32 = np.float32
    s = (y.astype(np.int32) - int(y_zero)).astype(f32) * f32(y_scale)
    return (np.asarray(g, f32).reshape(s.shape) * (s * (f32(1.0) - s))).astype(f32)


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    return logistic_s8(ins[0], **{k: int(op.attrs[k]) for k in ATTRS})


@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    b.emit(
        "logistic_s8",
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
        out = b.graph.tensors[op.output]
        dx = b.grad_buffer(x, op.name)
        b.emit(
            "logistic_bwd_f32",
            {"g": g, "y": b.act(op.output)},
            {"dx": dx},
            {"y_scale": float(np.float32(out.scale)), "y_zero": int(out.zero)},
            op.name,
            "backward",
        )
        b.contribute(x, dx)


@emitter("logistic_s8")
def _emit(s: Step, c: EmitContext) -> str:
    return call("logistic_s8", c.buf(s, "x"), c.size(s, "x"), *(c.attr(s, k) for k in ATTRS), c.out(s))


@emitter("logistic_bwd_f32")
def _emit_bwd(s: Step, c: EmitContext) -> str:
    return call(
        "logistic_bwd_f32",
        c.buf(s, "g"),
        c.buf(s, "y"),
        c.size(s, "y"),
        c.attr(s, "y_scale"),
        c.attr(s, "y_zero"),
        c.out(s),
    )
