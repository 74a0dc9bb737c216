"""`qconcat`: CONCATENATION of int8 tensors with one quantization, along channels (axis 0 of the IR's
(C, H, W)), rows or columns.

Forward (`concat_s8`, C twin firmware/runtime/ops/tt_qconcat.c): a copy. Gradient: the matching slice of g
to each input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinytrain.autodiff.registry import register_forward, register_gradient
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


# ---- lowering (forward: two inputs) ---------------------------------------------
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


def concat2_bwd_f32(g: np.ndarray, axis: int, part: int, h: int, w: int, c: int, offset: int) -> np.ndarray:
    """The slice of g f32[Ho, Wo, Co] that input `part` produced: [h, w, c] starting at `offset` along the
    concatenation axis (C twin tt_concat2_bwd_f32)."""
    g = np.asarray(g, np.float32)
    ax = HWC_AXIS[axis]
    idx = [slice(None)] * 3
    idx[ax] = slice(offset, offset + (h, w, c)[ax])
    return np.ascontiguousarray(g[tuple(idx)])


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    ax = int(op.attrs["axis"])
    offset = 0
    for part, x in enumerate(op.inputs):
        c, h, w = b.graph.tensors[x].shape
        if b.needs_grad(x):
            dx = b.grad_buffer(x, op.name)
            b.emit(
                "concat2_bwd_f32",
                {"g": g},
                {"dx": dx},
                {"axis": ax, "part": part, "h": h, "w": w, "c": c, "offset": offset},
                op.name,
                "backward",
            )
            b.contribute(x, dx)
        offset += (c, h, w)[ax]


@emitter("concat2_bwd_f32")
def _emit_bwd(s: Step, c: EmitContext) -> str:
    ho, wo, co = hwc_of(c.shape(s, "g"))
    return call(
        "concat2_bwd_f32",
        c.buf(s, "g"),
        ho,
        wo,
        co,
        c.attr(s, "axis"),
        c.attr(s, "h"),
        c.attr(s, "w"),
        c.attr(s, "c"),
        c.attr(s, "offset"),
        c.out(s),
    )
