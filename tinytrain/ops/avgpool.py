"""`avgpool`: the zoo's global average pool, int8 [H, W, C] -> [C] (C twins firmware/runtime/ops/tt_avgpool.c,
tt_avgpool_bwd.c; windowed pools of imported models: tinytrain/ops/pool.py).

Forward (`avgpool_s8`): the integer mean, rounded half to even. Its output cannot saturate: registered
`clamped=False`, so its gradient is not masked. Gradient (`avgpool_bwd_f32`):
`dx[h, w, c] = g[c] * f32(1/(H·W))`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytrain import TinytrainError
from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter, hwc
from tinytrain.ir import Graph, Op
from tinytrain.program import Step

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

KIND = "avgpool"
KERNELS = frozenset({"avgpool_s8", "avgpool_bwd_f32"})
F32 = np.float32


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    inp, out = graph.tensors[op.inputs[0]].shape, graph.tensors[op.output].shape
    if out != (inp[0], 1, 1):
        raise TinytrainError(f"layer {op.name!r}: global average pool output must be ({inp[0]}, 1, 1)")
    return out


def avgpool_s8(x: np.ndarray) -> np.ndarray:
    """Global average pool, round half to even in integers. x [H, W, C] -> y [C]."""
    n = x.shape[0] * x.shape[1]
    s = x.astype(np.int64).sum(axis=(0, 1))
    q = np.floor_divide(s, n)
    r = s - q * n
    q = q + ((2 * r > n) | ((2 * r == n) & (q % 2 == 1)))
    return q.astype(np.int8)


def avgpool_bwd_f32(g: np.ndarray, h: int, w: int) -> np.ndarray:
    """Global average pool gradient: g f32[C] -> dx f32[h, w, C], `dx = g * f32(1/(h*w))`."""
    g = np.asarray(g, F32).reshape(-1)
    inv_hw = F32(1.0 / (int(h) * int(w)))
    return np.ascontiguousarray(np.broadcast_to(g * inv_hw, (int(h), int(w), g.size)))


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    return avgpool_s8(ins[0]).reshape(1, 1, -1)


# ---- lowering ---------------------------------------------------------------------------------------
@register_forward("avgpool", clamped=False)
def avgpool_forward(b: Builder, op: Op) -> None:
    b.emit("avgpool_s8", {"x": b.act(op.inputs[0])}, {"y": b.def_act(op.output)}, {}, op.name)


@register_gradient("avgpool")
def avgpool_gradient(b: Builder, op: Op, g: str) -> None:
    x = op.inputs[0]
    if b.needs_grad(x):
        _, h, w = b.graph.tensors[x].shape
        dx = b.grad_buffer(x, op.name)
        b.emit("avgpool_bwd_f32", {"g": g}, {"dx": dx}, {"h": h, "w": w}, op.name, "backward")
        b.contribute(x, dx)


@emitter("avgpool_s8")
def _avgpool_s8(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc(c.shape(s, "x"))
    return call("avgpool_s8", c.buf(s, "x"), h, w, ch, c.out(s))


@emitter("avgpool_bwd_f32")
def _avgpool_bwd_f32(s: Step, c: EmitContext) -> str:
    return call("avgpool_bwd_f32", c.buf(s, "g"), c.size(s, "g"), c.attr(s, "h"), c.attr(s, "w"), c.out(s))
