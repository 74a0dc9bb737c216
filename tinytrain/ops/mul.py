"""`qmul`: MUL of two int8 tensors, the second of the same shape or a per-channel (C, 1, 1) broadcast (a
squeeze-excite gate), TFLite Micro numerics (reference_integer_ops::Mul / BroadcastMul).

IR attrs: `a_zero`, `b_zero`, `y_zero`, `mult`/`shift` (QuantizeMultiplier(f64(s_a)·f64(s_b)/f64(s_y))),
`act_min/act_max`, `a_scale`/`b_scale` (for the gradient).

Forward (`mul_s8`, C twin firmware/runtime/ops/tt_qmul.c): `y = clamp(y_zero + MBQM((a - a_zero)·(b - b_zero),
mult, shift), act_min, act_max)`, b read at [c] when broadcast.
Gradient (real values from the saved inputs): `da = g·b`, `db = g·a` (`mul_bwd_f32`; for a broadcast b,
`db[c] = Σ_{p raster asc} g[p,c]·a[p,c]`, sequential float32 from +0.0f).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytrain import TinytrainError
from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ir import Graph, Op
from tinytrain.ops import tflm
from tinytrain.ops.common import emit_clamp_mask, hwc_of, masked
from tinytrain.program import Step

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

KIND = "qmul"
ATTRS = ("a_zero", "b_zero", "y_zero", "mult", "shift", "act_min", "act_max")


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    sa, sb = (graph.tensors[t].shape for t in op.inputs)
    if sb != sa and sb != (sa[0], 1, 1):
        raise TinytrainError(
            f"layer {op.name!r}: MUL of {sa} by {sb}: the second must match or be ({sa[0]}, 1, 1)"
        )
    return sa


def mul_s8(
    a: np.ndarray,
    b: np.ndarray,
    a_zero: int,
    b_zero: int,
    y_zero: int,
    mult: int,
    shift: int,
    act_min: int,
    act_max: int,
) -> np.ndarray:
    c = a.shape[-1]
    bb = np.broadcast_to(b.reshape(c), a.shape) if b.size == c else b
    prod = (a.astype(np.int64) - int(a_zero)) * (bb.astype(np.int64) - int(b_zero))
    y = tflm.mbqm(prod, mult, shift) + int(y_zero)
    return np.clip(y, act_min, act_max).astype(np.int8)


def mul_bwd_f32(
    g: np.ndarray, other: np.ndarray, other_scale: float, other_zero: int, reduce: int = 0
) -> np.ndarray:
    """`g·other_real` elementwise (other broadcast per channel when it has C elements); with `reduce`, the
    per-channel sums over positions in raster order (the gradient of a broadcast operand)."""
    f32 = np.float32
    g = np.asarray(g, f32)
    c = g.shape[-1]
    o = (other.astype(np.int32) - int(other_zero)).astype(f32) * f32(other_scale)
    o = np.broadcast_to(o.reshape(-1), (g.size // c, c)) if o.size == c else o.reshape(-1, c)
    prod = g.reshape(-1, c) * o
    if not reduce:
        return prod.reshape(g.shape).astype(f32)
    s = np.zeros(c, f32)
    for p in range(prod.shape[0]):
        s += prod[p]
    return s


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    return mul_s8(ins[0], ins[1], **{k: int(op.attrs[k]) for k in ATTRS})


@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    b.emit(
        "mul_s8",
        {"a": b.act(op.inputs[0]), "b": b.act(op.inputs[1])},
        {"y": b.def_act(op.output)},
        {k: int(op.attrs[k]) for k in ATTRS},
        op.name,
    )
    emit_clamp_mask(b, op, int(op.attrs["act_min"]), int(op.attrs["act_max"]))


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    g = masked(b, op, g)
    ta, tb = (b.graph.tensors[t] for t in op.inputs)
    a, bt = op.inputs
    broadcast = tb.shape != ta.shape
    f32 = np.float32
    if b.needs_grad(a):
        da = b.grad_buffer(a, op.name)
        b.emit(
            "mul_bwd_f32",
            {"g": g, "other": b.act(bt)},
            {"dx": da},
            {"other_scale": float(f32(tb.scale)), "other_zero": int(tb.zero), "reduce": 0},
            op.name,
            "backward",
        )
        b.contribute(a, da)
    if b.needs_grad(bt):
        db = b.grad_buffer(bt, op.name)
        b.emit(
            "mul_bwd_f32",
            {"g": g, "other": b.act(a)},
            {"dx": db},
            {"other_scale": float(f32(ta.scale)), "other_zero": int(ta.zero), "reduce": int(broadcast)},
            op.name,
            "backward",
        )
        b.contribute(bt, db)


@emitter("mul_s8")
def _emit(s: Step, c: EmitContext) -> str:
    _, _, ch = hwc_of(c.shape(s, "a"))
    return call(
        "mul_s8",
        c.buf(s, "a"),
        c.buf(s, "b"),
        c.size(s, "a"),
        ch,
        c.size(s, "b"),
        *(c.attr(s, k) for k in ATTRS),
        c.out(s),
    )


@emitter("mul_bwd_f32")
def _emit_bwd(s: Step, c: EmitContext) -> str:
    _, _, ch = hwc_of(c.shape(s, "g"))
    return call(
        "mul_bwd_f32",
        c.buf(s, "g"),
        c.size(s, "g"),
        ch,
        c.buf(s, "other"),
        c.size(s, "other"),
        c.attr(s, "other_scale"),
        c.attr(s, "other_zero"),
        c.attr(s, "reduce"),
        c.out(s),
    )
