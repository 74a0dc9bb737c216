"""`qadd`: ADD of two int8 tensors of one shape, TFLite Micro numerics (add.cc, reference_integer_ops::Add).

IR attrs: `a_zero`, `b_zero`, `y_zero`, `left_shift` (20), `a_mult/a_shift`, `b_mult/b_shift`,
`y_mult/y_shift` (tinytrain/models/tflite_import.py `qadd_params`), `act_min/act_max`.

Forward (`qadd_s8`, C twin firmware/runtime/ops/tt_qadd.c), per element:
`sa = MBQMSmallerThanOne((a - a_zero) << left_shift, a_mult, a_shift)` (likewise sb),
`y = clamp(MBQMSmallerThanOne(sa + sb, y_mult, y_shift) + y_zero, act_min, act_max)`.

Gradient: y = a + b in real values: both inputs receive the masked g unchanged (as `add`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ops.common import emit_clamp_mask, masked
from tinytrain.program import Step

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op
from tinytrain.ops import tflm

KIND = "qadd"


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    shapes = {graph.tensors[t].shape for t in op.inputs}
    if len(op.inputs) != 2 or len(shapes) != 1:
        raise TinytrainError(f"layer {op.name!r}: qadd needs two inputs of one shape")
    return graph.tensors[op.inputs[0]].shape


def qadd_s8(
    a: np.ndarray,
    b: np.ndarray,
    a_zero: int,
    b_zero: int,
    y_zero: int,
    left_shift: int,
    a_mult: int,
    a_shift: int,
    b_mult: int,
    b_shift: int,
    y_mult: int,
    y_shift: int,
    act_min: int,
    act_max: int,
) -> np.ndarray:
    sa = tflm.mbqm_smaller_than_one((a.astype(np.int64) - a_zero) << left_shift, a_mult, a_shift)
    sb = tflm.mbqm_smaller_than_one((b.astype(np.int64) - b_zero) << left_shift, b_mult, b_shift)
    y = tflm.mbqm_smaller_than_one(tflm._wrap32(sa + sb), y_mult, y_shift) + y_zero
    return np.clip(y, act_min, act_max).astype(np.int8)


ATTRS = (
    "a_zero",
    "b_zero",
    "y_zero",
    "left_shift",
    "a_mult",
    "a_shift",
    "b_mult",
    "b_shift",
    "y_mult",
    "y_shift",
    "act_min",
    "act_max",
)


def qadd_ort_s8(
    a: np.ndarray, b: np.ndarray, a_mult: int, b_mult: int, zconst: int, shift: int, y_zero: int
) -> np.ndarray:
    """onnxruntime's QLinearAdd (MLAS): `acc = zconst + a*a_mult + b*b_mult` (int32; `zconst = -(a_mult*a_zero
    + b_mult*b_zero)`), `r = (acc >> shift) + (((acc & (2^shift-1)) - (acc < 0)) > (2^shift-1) >> 1)`,
    then saturate to int16, `+ y_zero`, saturate to int8 (numerics "ort")."""
    acc = tflm._wrap32(int(zconst) + a.astype(np.int64) * int(a_mult) + b.astype(np.int64) * int(b_mult))
    mask = (1 << int(shift)) - 1
    rem = (acc & mask) - (acc < 0)
    r = (acc >> int(shift)) + (rem > (mask >> 1))
    return np.clip(np.clip(r, -32768, 32767) + int(y_zero), -128, 127).astype(np.int8)


def ort_params(a_scale: float, b_scale: float, y_scale: float, a_zero: int, b_zero: int) -> dict[str, int]:
    """MLAS's QLinearAdd parameters: ratios `s_a/s_y`, `s_b/s_y` (float32), `shift = 21 - exponent(max
    ratio)`,
    multipliers `lrintf(ratio * 2^shift)`."""
    f32 = np.float32
    ra, rb = f32(a_scale) / f32(y_scale), f32(b_scale) / f32(y_scale)
    exp = int(np.frexp(max(ra, rb))[1]) - 1  # IEEE exponent of the larger ratio
    shift = 21 - exp
    if not 13 <= shift <= 31:
        raise TinytrainError(
            f"QLinearAdd scale ratios {ra}, {rb} are outside onnxruntime's fixed-point range"
        )
    m = f32(2.0**shift)
    ma, mb = int(np.rint(f32(ra * m))), int(np.rint(f32(rb * m)))
    return {"a_mult": ma, "b_mult": mb, "zconst": -(ma * int(a_zero) + mb * int(b_zero)), "shift": shift}


ORT_ATTRS = ("a_mult", "b_mult", "zconst", "shift", "y_zero")


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    if op.attrs.get("mode") == "ort":
        return qadd_ort_s8(ins[0], ins[1], **{k: int(op.attrs[k]) for k in ORT_ATTRS})
    return qadd_s8(ins[0], ins[1], **{k: int(op.attrs[k]) for k in ATTRS})


# ---- lowering ---------------------------------------------------------------------------------------
@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    if op.attrs.get("mode") == "ort":
        b.emit(
            "qadd_ort_s8",
            {"a": b.act(op.inputs[0]), "b": b.act(op.inputs[1])},
            {"y": b.def_act(op.output)},
            {k: int(op.attrs[k]) for k in ORT_ATTRS},
            op.name,
        )
        emit_clamp_mask(b, op, -128, 127)
        return
    b.emit(
        "qadd_s8",
        {"a": b.act(op.inputs[0]), "b": b.act(op.inputs[1])},
        {"y": b.def_act(op.output)},
        {k: int(op.attrs[k]) for k in ATTRS},
        op.name,
    )
    emit_clamp_mask(b, op, int(op.attrs["act_min"]), int(op.attrs["act_max"]))


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    g = masked(b, op, g)
    for t in op.inputs:
        if b.needs_grad(t):
            b.contribute(t, g)


@emitter("qadd_s8")
def _emit(s: Step, c: EmitContext) -> str:
    return call(
        "qadd_s8", c.buf(s, "a"), c.buf(s, "b"), c.size(s, "a"), *(c.attr(s, k) for k in ATTRS), c.out(s)
    )


@emitter("qadd_ort_s8")
def _emit_ort(s: Step, c: EmitContext) -> str:
    return call(
        "qadd_ort_s8",
        c.buf(s, "a"),
        c.buf(s, "b"),
        c.size(s, "a"),
        *(c.attr(s, k) for k in ORT_ATTRS),
        c.out(s),
    )
