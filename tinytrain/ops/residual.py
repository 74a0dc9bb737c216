"""`add`: the zoo's residual add of two int8 tensors of one shape (C twin firmware/runtime/ops/tt_add.c).

Forward (`add_s8`, docs/numerics.md): `v = f32(a - a_zero)*fa + f32(b - b_zero)*fb` with `fa = f32(s_a/s_y)`,
`fb = f32(s_b/s_y)`; `y = clamp(rne(v) + y_zero)`; its output may be written over its first input.
Gradient: `y = a + b` in real values: both inputs receive the masked `g` unchanged (no kernel; the builder
sums two contributions with `add_f32`). (The imported models' TFLite ADD is `qadd`, tinytrain/ops/add.py.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytrain import TinytrainError
from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ir import Graph, Op
from tinytrain.kernels.requant import rne
from tinytrain.program import Step

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

KIND = "add"
KERNELS = frozenset({"add_s8"})
F32 = np.float32


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    out = graph.tensors[op.output].shape
    shapes = {graph.tensors[t].shape for t in op.inputs}
    if len(op.inputs) != 2 or len(shapes) != 1 or out not in shapes:
        raise TinytrainError(f"layer {op.name!r}: residual add needs two inputs of the output's shape")
    return out


def add_s8(
    a: np.ndarray, b: np.ndarray, fa: float, fb: float, a_zero: int, b_zero: int, y_zero: int
) -> np.ndarray:
    """Residual add: v = f32(a - a_zero)*fa + f32(b - b_zero)*fb; y = clamp(rne(v) + y_zero)."""
    ta = (a.astype(np.int32) - int(a_zero)).astype(F32) * F32(fa)
    tb = (b.astype(np.int32) - int(b_zero)).astype(F32) * F32(fb)
    v = np.clip(ta + tb, F32(-256.0), F32(256.0))
    return np.clip(rne(v).astype(np.int32) + int(y_zero), -128, 127).astype(np.int8)


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    a, b = (graph.tensors[t] for t in op.inputs)
    out = graph.tensors[op.output]
    return add_s8(
        ins[0],
        ins[1],
        np.float32(a.scale / out.scale),
        np.float32(b.scale / out.scale),
        a.zero,
        b.zero,
        out.zero,
    )


# ---- lowering ---------------------------------------------------------------------------------------
def add_attrs(graph: Graph, op: Op) -> dict[str, float | int]:
    """The `add_s8` step attributes of `op` (also used by a patched stage's tiles)."""
    ta, tb = (graph.tensors[t] for t in op.inputs)
    out = graph.tensors[op.output]
    return {
        "fa": float(np.float32(ta.scale / out.scale)),
        "fb": float(np.float32(tb.scale / out.scale)),
        "a_zero": int(ta.zero),
        "b_zero": int(tb.zero),
        "y_zero": int(out.zero),
    }


@register_forward("add")
def add_forward(b: Builder, op: Op) -> None:
    b.emit(
        "add_s8",
        {"a": b.act(op.inputs[0]), "b": b.act(op.inputs[1])},
        {"y": b.def_act(op.output, inplace_of=op.inputs[0], kernel="add_s8")},
        add_attrs(b.graph, op),
        op.name,
    )


@register_gradient("add")
def add_gradient(b: Builder, op: Op, g: str) -> None:
    for t in op.inputs:  # both paths receive g itself (no copy); the builder copies only to mask
        if b.needs_grad(t):
            b.contribute(t, g)


@emitter("add_s8")
def _add_s8(s: Step, c: EmitContext) -> str:
    return call(
        "add_s8",
        c.buf(s, "a"),
        c.buf(s, "b"),
        c.size(s, "a"),
        c.attr(s, "fa"),
        c.attr(s, "fb"),
        c.attr(s, "a_zero"),
        c.attr(s, "b_zero"),
        c.attr(s, "y_zero"),
        c.out(s),
    )
