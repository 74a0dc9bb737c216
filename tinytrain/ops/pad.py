"""`qpad`: PAD / PADV2 of the spatial axes with a constant (the output zero point for PAD).

IR attrs: `pad_top/pad_bottom/pad_left/pad_right`, `value`. Forward (`pad_s8`, C twin
firmware/runtime/ops/tt_qpad.c): copy into the middle, `value` around. Gradient: the middle of g.
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

from tinytrain.ir import Graph, Op

KIND = "qpad"


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    c, h, w = graph.tensors[op.inputs[0]].shape
    a = op.attrs
    return (c, h + int(a["pad_top"]) + int(a["pad_bottom"]), w + int(a["pad_left"]) + int(a["pad_right"]))


def pad_s8(
    x: np.ndarray, pad_top: int, pad_bottom: int, pad_left: int, pad_right: int, value: int
) -> np.ndarray:
    return np.pad(x, ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0)), constant_values=value).astype(
        np.int8
    )


def pad_bwd_f32(g: np.ndarray, pad_top: int, pad_left: int, in_h: int, in_w: int) -> np.ndarray:
    return np.ascontiguousarray(g[pad_top : pad_top + in_h, pad_left : pad_left + in_w], np.float32)


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    a = op.attrs
    keys = ("pad_top", "pad_bottom", "pad_left", "pad_right", "value")
    return pad_s8(ins[0], **{k: int(a[k]) for k in keys})


# ---- lowering  ----------------------------------------------------------
_KEYS = ("pad_top", "pad_bottom", "pad_left", "pad_right", "value")


@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    b.emit(
        "pad_s8",
        {"x": b.act(op.inputs[0])},
        {"y": b.def_act(op.output)},
        {k: int(op.attrs[k]) for k in _KEYS},
        op.name,
    )


@emitter("pad_s8")
def _emit(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc_of(c.shape(s, "x"))
    return call("pad_s8", c.buf(s, "x"), h, w, ch, *(c.attr(s, k) for k in _KEYS), c.out(s))


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    x = op.inputs[0]
    if b.needs_grad(x):
        _, h, w = b.graph.tensors[x].shape
        dx = b.grad_buffer(x, op.name)
        b.emit(
            "pad_bwd_f32",
            {"g": g},
            {"dx": dx},
            {
                "pad_top": int(op.attrs["pad_top"]),
                "pad_left": int(op.attrs["pad_left"]),
                "in_h": h,
                "in_w": w,
            },
            op.name,
            "backward",
        )
        b.contribute(x, dx)


@emitter("pad_bwd_f32")
def _emit_bwd(s: Step, c: EmitContext) -> str:
    ho, wo, ch = hwc_of(c.shape(s, "g"))
    return call(
        "pad_bwd_f32",
        c.buf(s, "g"),
        ho,
        wo,
        ch,
        c.attr(s, "pad_top"),
        c.attr(s, "pad_left"),
        c.attr(s, "in_h"),
        c.attr(s, "in_w"),
        c.out(s),
    )
