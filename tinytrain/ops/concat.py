"""`qconcat`: CONCATENATION of int8 tensors with one quantization, along channels (axis 0 of the IR's
(C, H, W)), rows or columns.

Forward (`concat_s8`, C twin firmware/runtime/ops/tt_qconcat.c): a copy. Gradient: the matching slice of g
to each input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinytrain.autodiff.registry import register_forward
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ops.common import hwc_of
from tinytrain.program import Step

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op

KIND = "qconcat"
#: IR axis (C, H, W) -> axis of the device layout (H, W, C)
HWC_AXIS = {0: 2, 1: 0, 2: 1}


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    shapes = [graph.tensors[t].shape for t in op.inputs]
    ax = int(op.attrs["axis"])
    out = list(shapes[0])
    for s in shapes[1:]:
        if any(s[d] != shapes[0][d] for d in range(3) if d != ax):
            raise TinytrainError(f"layer {op.name!r}: concatenated shapes {shapes} differ off axis {ax}")
        out[ax] += s[ax]
    return (out[0], out[1], out[2])


def concat_s8(xs: list[np.ndarray], axis: int) -> np.ndarray:
    return np.concatenate(xs, axis=HWC_AXIS[axis]).astype(np.int8)


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    return concat_s8(ins, int(op.attrs["axis"]))


def concat2_s8(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """Two inputs (the compiled form; C twin tt_concat2_s8)."""
    return concat_s8([a, b], axis)


# ---- lowering (forward, two inputs; no gradient rule yet) ---------------------------------------------
@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    if len(op.inputs) != 2:
        raise TinytrainError(
            f"layer {op.name!r}: CONCATENATION of {len(op.inputs)} inputs compiles for 2 only"
        )
    b.emit(
        "concat2_s8",
        {"a": b.act(op.inputs[0]), "b": b.act(op.inputs[1])},
        {"y": b.def_act(op.output)},
        {"axis": int(op.attrs["axis"])},
        op.name,
    )


@emitter("concat2_s8")
def _emit(s: Step, c: EmitContext) -> str:
    h, w, _ = hwc_of(c.shape(s, "y"))
    ha, wa, ca = hwc_of(c.shape(s, "a"))
    _, _, cb = hwc_of(c.shape(s, "b"))
    return call("concat2_s8", c.buf(s, "a"), c.buf(s, "b"), h, w, ca, cb, c.attr(s, "axis"), ha, wa, c.out(s))
