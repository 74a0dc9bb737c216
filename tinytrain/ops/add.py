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


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    return qadd_s8(ins[0], ins[1], **{k: int(op.attrs[k]) for k in ATTRS})


# ---- lowering ---------------------------------------------------------------------------------------
@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
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
